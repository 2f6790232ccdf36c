using System.Globalization;
using System.Net;
using System.Text;

namespace VlaCloud.Training.Jobs;

/// <summary>
/// Draws a job's loss curves as a self-contained SVG: a log-scale loss axis with each loss smoothed (an exponential
/// moving average, the raw values faint behind it), the learning rate on a linear axis of its own, and marks for
/// evaluations, saved training states and resumes. Written by hand: it needs no native graphics library, so it renders
/// the same on every trainer and API pod.
/// </summary>
public static class LossCurve
{
    private const int Width = 760, Height = 420, Left = 64, Right = 190, Top = 36, Bottom = 48;

    /// <summary>The SVG document for <paramref name="metrics"/> (an empty chart with a note when there are no steps).</summary>
    /// <param name="title">The chart's title.</param>
    /// <param name="metrics">The job's series.</param>
    /// <param name="smoothing">The moving average's weight in [0, 1); null picks <see cref="JobMetrics.DefaultSmoothing"/>.</param>
    public static string Svg(string title, JobMetrics metrics, double? smoothing = null)
    {
        var points = metrics.Points;
        var weight = smoothing ?? JobMetrics.DefaultSmoothing(points.Count);
        var series = new (string Name, string Color, Func<LossPoint, double?> Value)[]
        {
            ("loss", "#1f77b4", p => p.Loss),
            ("action loss", "#d95f02", p => p.ActionLoss),
            ("spatial loss", "#2ca02c", p => p.SpatialLoss),
        };
        var values = points.SelectMany(p => series.Select(s => s.Value(p))).OfType<double>().Where(v => v > 0 && double.IsFinite(v)).ToList();
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" viewBox=\"0 0 {Width} {Height}\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\" aria-label=\"{WebUtility.HtmlEncode(title)}: loss curves\">");
        svg.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{(Width - Right + Left) / 2}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{WebUtility.HtmlEncode(title)}</text>");
        var plotWidth = Width - Left - Right;
        var plotHeight = Height - Top - Bottom;
        svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{Left}\" y=\"{Top}\" width=\"{plotWidth}\" height=\"{plotHeight}\" fill=\"none\" stroke=\"#888\"/>");
        if (values.Count == 0)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left + plotWidth / 2}\" y=\"{Top + plotHeight / 2}\" text-anchor=\"middle\" fill=\"#595959\">no steps yet</text></svg>");
            return svg.ToString();
        }
        var minStep = Math.Min(points.Min(p => p.Step), metrics.Resumes.DefaultIfEmpty(int.MaxValue).Min());
        var maxStep = Math.Max(points.Max(p => p.Step), minStep + 1);
        var lo = Math.Log10(values.Min());
        var hi = Math.Log10(values.Max());
        if (hi - lo < 1e-6) { lo -= 0.5; hi += 0.5; }
        double X(int step) => Left + (double)(Math.Clamp(step, minStep, maxStep) - minStep) / (maxStep - minStep) * plotWidth;
        double Y(double v) => Top + (hi - Math.Log10(v)) / (hi - lo) * plotHeight;

        // Decade ticks on the y axis, five ticks on the x axis.
        for (var e = (int)Math.Ceiling(lo); e <= (int)Math.Floor(hi); e++)
        {
            var y = Y(Math.Pow(10, e));
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" x2=\"{Left + plotWidth}\" y1=\"{y:F1}\" y2=\"{y:F1}\" stroke=\"#eee\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left - 6}\" y=\"{y + 4:F1}\" text-anchor=\"end\">1e{e}</text>");
        }
        for (var i = 0; i <= 4; i++)
        {
            var step = minStep + (maxStep - minStep) * i / 4;
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{X(step):F1}\" y=\"{Top + plotHeight + 16}\" text-anchor=\"middle\">{step}</text>");
        }
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left + plotWidth / 2}\" y=\"{Height - 10}\" text-anchor=\"middle\">step</text>");

        var legend = 0;
        void Legend(string name, string color, string dash = "", double opacity = 1)
        {
            var ly = Top + 10 + legend++ * 18;
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Width - Right + 44}\" x2=\"{Width - Right + 64}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\" stroke-opacity=\"{opacity:0.##}\"{dash}/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Width - Right + 70}\" y=\"{ly + 4}\">{name}</text>");
        }

        // Marks first, so the curves draw over them: resumes (red, dashed), saved states (grey ticks), evaluations (purple).
        foreach (var step in metrics.Resumes)
            svg.Append(CultureInfo.InvariantCulture, $"<line class=\"mark-resume\" x1=\"{X(step):F1}\" x2=\"{X(step):F1}\" y1=\"{Top}\" y2=\"{Top + plotHeight}\" stroke=\"#c62828\" stroke-dasharray=\"6 3\"><title>resumed from step {step}</title></line>");
        foreach (var step in metrics.Saves)
            svg.Append(CultureInfo.InvariantCulture, $"<line class=\"mark-save\" x1=\"{X(step):F1}\" x2=\"{X(step):F1}\" y1=\"{Top + plotHeight - 8}\" y2=\"{Top + plotHeight}\" stroke=\"#555\" stroke-width=\"2\"><title>saved step {step}</title></line>");
        foreach (var evaluation in metrics.Evaluations)
        {
            var text = string.Join(", ", evaluation.Metrics.Select(m => string.Create(CultureInfo.InvariantCulture, $"{m.Key} {m.Value:G4}")));
            svg.Append(CultureInfo.InvariantCulture, $"<line class=\"mark-evaluation\" x1=\"{X(evaluation.Step):F1}\" x2=\"{X(evaluation.Step):F1}\" y1=\"{Top}\" y2=\"{Top + plotHeight}\" stroke=\"#6a1b9a\" stroke-dasharray=\"2 2\"><title>evaluation at step {evaluation.Step}: {WebUtility.HtmlEncode(text)}</title></line>");
        }

        foreach (var (name, color, value) in series)
        {
            var line = points.Select(p => (p.Step, Value: value(p))).Where(p => p.Value is > 0 && double.IsFinite(p.Value.Value)).ToList();
            if (line.Count == 0) continue;
            // Raw values faint, the smoothed trend over them (a one-step drop stays visible, the trend is readable).
            if (weight > 0) Polyline(svg, line.Select(p => (X(p.Step), Y(p.Value!.Value))), color, 1, 0.25, "raw");
            var smooth = JobMetrics.Smooth([.. line.Select(p => p.Value)], weight);
            Polyline(svg, line.Select((p, i) => (X(p.Step), Y(smooth[i]!.Value))), color, 1.75, 1, "smoothed");
            Legend(name, color);
        }

        // The learning rate on its own linear axis at the right (0 at the bottom).
        var rates = points.Where(p => p.LearningRate is { } r && double.IsFinite(r) && r >= 0).ToList();
        if (rates.Count > 0)
        {
            var maxRate = rates.Max(p => p.LearningRate!.Value);
            if (maxRate <= 0) maxRate = 1;
            double R(double r) => Top + plotHeight - r / maxRate * plotHeight;
            Polyline(svg, rates.Select(p => (X(p.Step), R(p.LearningRate!.Value))), "#455a64", 1.25, 0.9, "learning-rate", " stroke-dasharray=\"5 3\"");
            var axis = Left + plotWidth;
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{axis + 4}\" y=\"{Top + 4}\" fill=\"#455a64\">{maxRate:0.##e0}</text>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{axis + 4}\" y=\"{Top + plotHeight}\" fill=\"#455a64\">0</text>");
            Legend("learning rate", "#455a64", " stroke-dasharray=\"5 3\"");
        }
        if (metrics.Evaluations.Count > 0) Legend("evaluation", "#6a1b9a", " stroke-dasharray=\"2 2\"");
        if (metrics.Saves.Count > 0) Legend("saved state", "#555");
        if (metrics.Resumes.Count > 0) Legend("resumed", "#c62828", " stroke-dasharray=\"6 3\"");
        if (weight > 0)
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Width - Right + 44}\" y=\"{Top + 10 + legend * 18 + 8}\" fill=\"#595959\">smoothing {weight:0.##} (raw faint)</text>");
        svg.Append("</svg>");
        return svg.ToString();
    }

    private static void Polyline(StringBuilder svg, IEnumerable<(double X, double Y)> points, string color, double width, double opacity, string kind, string extra = "")
    {
        svg.Append(CultureInfo.InvariantCulture, $"<polyline class=\"{kind}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"{width}\" stroke-opacity=\"{opacity}\"{extra} points=\"");
        svg.AppendJoin(' ', points.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.X:F1},{p.Y:F1}")));
        svg.Append("\"/>");
    }
}
