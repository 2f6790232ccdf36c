using System.Globalization;
using System.Net;
using System.Text;

namespace VlaCloud.Training.Jobs;

/// <summary>One point of a loss curve.</summary>
/// <param name="Step">Training step.</param>
/// <param name="Loss">Total loss.</param>
/// <param name="ActionLoss">Flow-matching loss, when known.</param>
/// <param name="SpatialLoss">Spatial loss, when the step had spatial samples.</param>
public sealed record LossPoint(int Step, double Loss, double? ActionLoss, double? SpatialLoss);

/// <summary>
/// Draws a job's loss curves as a self-contained SVG (a log-scale y axis, one line per loss). Written by hand: it
/// needs no native graphics library, so it renders the same on every trainer and API pod.
/// </summary>
public static class LossCurve
{
    private const int Width = 720, Height = 400, Left = 64, Right = 150, Top = 36, Bottom = 48;

    /// <summary>The SVG document for <paramref name="points"/> (an empty chart with a note when there are none).</summary>
    public static string Svg(string title, IReadOnlyList<LossPoint> points)
    {
        var series = new (string Name, string Color, Func<LossPoint, double?> Value)[]
        {
            ("loss", "#1f77b4", p => p.Loss),
            ("action loss", "#ff7f0e", p => p.ActionLoss),
            ("spatial loss", "#2ca02c", p => p.SpatialLoss),
        };
        var values = points.SelectMany(p => series.Select(s => s.Value(p))).OfType<double>().Where(v => v > 0 && double.IsFinite(v)).ToList();
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" viewBox=\"0 0 {Width} {Height}\" font-family=\"sans-serif\" font-size=\"12\">");
        svg.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Width / 2}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{WebUtility.HtmlEncode(title)}</text>");
        var plotWidth = Width - Left - Right;
        var plotHeight = Height - Top - Bottom;
        svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{Left}\" y=\"{Top}\" width=\"{plotWidth}\" height=\"{plotHeight}\" fill=\"none\" stroke=\"#888\"/>");
        if (values.Count == 0)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left + plotWidth / 2}\" y=\"{Top + plotHeight / 2}\" text-anchor=\"middle\" fill=\"#888\">no steps yet</text></svg>");
            return svg.ToString();
        }
        var minStep = points.Min(p => p.Step);
        var maxStep = Math.Max(points.Max(p => p.Step), minStep + 1);
        var lo = Math.Log10(values.Min());
        var hi = Math.Log10(values.Max());
        if (hi - lo < 1e-6) { lo -= 0.5; hi += 0.5; }
        double X(int step) => Left + (double)(step - minStep) / (maxStep - minStep) * plotWidth;
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
        foreach (var (name, color, value) in series)
        {
            var line = points.Select(p => (p.Step, Value: value(p))).Where(p => p.Value is > 0 && double.IsFinite(p.Value.Value)).ToList();
            if (line.Count == 0) continue;
            svg.Append(CultureInfo.InvariantCulture, $"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"");
            svg.AppendJoin(' ', line.Select(p => string.Create(CultureInfo.InvariantCulture, $"{X(p.Step):F1},{Y(p.Value!.Value):F1}")));
            svg.Append("\"/>");
            var ly = Top + 10 + legend++ * 18;
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Width - Right + 12}\" x2=\"{Width - Right + 32}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Width - Right + 38}\" y=\"{ly + 4}\">{name}</text>");
        }
        svg.Append("</svg>");
        return svg.ToString();
    }
}
