using System.Globalization;
using System.Text;
using System.Text.Json;

namespace VlaCloud.Training.Jobs;

/// <summary>One training step's numbers, as the trainer reported them in its <c>metrics</c> event.</summary>
/// <param name="Step">Training step.</param>
/// <param name="Loss">Total loss.</param>
/// <param name="ActionLoss">The action expert's loss, when known.</param>
/// <param name="SpatialLoss">The spatial (VLM) loss, when the step had spatial samples.</param>
/// <param name="LearningRate">The action expert's learning rate at the step.</param>
/// <param name="VlmLearningRate">System 2's learning rate at the step.</param>
/// <param name="GradientNorm">The gradient norm before clipping.</param>
public sealed record LossPoint(int Step, double Loss, double? ActionLoss, double? SpatialLoss,
    double? LearningRate = null, double? VlmLearningRate = null, double? GradientNorm = null);

/// <summary>An evaluation of the job's policy, at the step it was made.</summary>
/// <param name="Step">The step evaluated.</param>
/// <param name="Metrics">Its numbers (success rate, action MSE, …), by name.</param>
public sealed record EvaluationMark(int Step, IReadOnlyDictionary<string, double> Metrics);

/// <summary>
/// A job's training series, read back from its events: per-step losses and learning rates, evaluations, saved
/// training states and the steps it resumed from. The loss curve, the metrics route (JSON and CSV) and the console
/// all draw from this one reading.
/// </summary>
/// <param name="Points">One point per step, in step order; when a resumed run repeats steps the latest value wins.</param>
/// <param name="Evaluations">Evaluations in order.</param>
/// <param name="Saves">Steps whose training state was saved.</param>
/// <param name="Resumes">Steps an attempt resumed from.</param>
public sealed record JobMetrics(IReadOnlyList<LossPoint> Points, IReadOnlyList<EvaluationMark> Evaluations, IReadOnlyList<int> Saves, IReadOnlyList<int> Resumes)
{
    /// <summary>The message prefix of the trainer's evaluation event (its data holds the numbers).</summary>
    public const string EvaluationPrefix = "Evaluation:";

    /// <summary>The message prefix of the trainer's saved-state event (its data holds step and sha256).</summary>
    public const string SavedPrefix = "Saved the training state";

    /// <summary>The CSV columns, in order.</summary>
    public static IReadOnlyList<string> CsvColumns { get; } =
        ["step", "loss", "action_loss", "spatial_loss", "learning_rate", "vlm_learning_rate", "gradient_norm", "saved", "resumed_from"];

    /// <summary>Reads the series from a job's events (type, message, data JSON), in event order.</summary>
    public static JobMetrics FromEvents(IEnumerable<(string Type, string Message, string? Data)> events)
    {
        var points = new SortedDictionary<int, LossPoint>();
        var evaluations = new List<EvaluationMark>();
        var saves = new SortedSet<int>();
        var resumes = new List<int>();
        var lastStep = 0;
        foreach (var (type, message, data) in events)
        {
            if (data is null) continue;
            using var document = JsonDocument.Parse(data);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) continue;
            if (type == "metrics")
            {
                if (Int(root, "step") is not { } step || Number(root, "loss") is not { } loss) continue;
                points[step] = new LossPoint(step, loss, Number(root, "action_loss"), Number(root, "spatial_loss"),
                    Number(root, "learning_rate"), Number(root, "vlm_learning_rate"), Number(root, "gradient_norm"));
                lastStep = step;
            }
            else if (Int(root, "resumed_from_step") is { } from)
            {
                resumes.Add(from);
            }
            else if (message.StartsWith(SavedPrefix, StringComparison.Ordinal) && Int(root, "step") is { } saved)
            {
                saves.Add(saved);
            }
            else if (message.StartsWith(EvaluationPrefix, StringComparison.Ordinal))
            {
                var numbers = root.EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.Number)
                    .ToDictionary(p => p.Name, p => p.Value.GetDouble());
                evaluations.Add(new EvaluationMark(lastStep, numbers));
            }
        }
        return new JobMetrics([.. points.Values], evaluations, [.. saves], resumes);
    }

    /// <summary>
    /// The series as CSV (RFC 4180, invariant culture): one row per step with <see cref="CsvColumns"/>, then one column
    /// per evaluation metric (<c>eval_NAME</c>) filled on the step it was evaluated at. Empty cells are unknown values.
    /// </summary>
    public string ToCsv()
    {
        var evalNames = Evaluations.SelectMany(e => e.Metrics.Keys).Distinct().Order(StringComparer.Ordinal).ToList();
        var evalByStep = Evaluations.GroupBy(e => e.Step).ToDictionary(g => g.Key, g => g.Last());
        var saved = Saves.ToHashSet();
        var resumed = Resumes.ToHashSet();
        var csv = new StringBuilder();
        csv.AppendJoin(',', CsvColumns.Concat(evalNames.Select(n => $"eval_{n}"))).Append("\r\n");
        // Steps that only carry a mark (a save or resume before any reported step) still get a row.
        var steps = Points.Select(p => p.Step).Concat(saved).Concat(resumed).Concat(evalByStep.Keys).Distinct().Order();
        var byStep = Points.ToDictionary(p => p.Step);
        foreach (var step in steps)
        {
            byStep.TryGetValue(step, out var p);
            csv.Append(step.ToString(CultureInfo.InvariantCulture));
            foreach (var value in new[] { p?.Loss, p?.ActionLoss, p?.SpatialLoss, p?.LearningRate, p?.VlmLearningRate, p?.GradientNorm })
                csv.Append(',').Append(Format(value));
            csv.Append(',').Append(saved.Contains(step) ? "1" : "0");
            csv.Append(',').Append(resumed.Contains(step) ? step.ToString(CultureInfo.InvariantCulture) : "");
            evalByStep.TryGetValue(step, out var evaluation);
            foreach (var name in evalNames)
                csv.Append(',').Append(evaluation is not null && evaluation.Metrics.TryGetValue(name, out var v) ? Format(v) : "");
            csv.Append("\r\n");
        }
        return csv.ToString();
    }

    /// <summary>
    /// An exponential moving average of <paramref name="values"/> with TensorBoard's debiasing (the first values are
    /// not pulled towards zero); <paramref name="weight"/> 0 returns the values, nulls are carried through.
    /// </summary>
    public static double?[] Smooth(IReadOnlyList<double?> values, double weight)
    {
        if (weight is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(weight), "weight must be in [0, 1).");
        var smoothed = new double?[values.Count];
        double last = 0;
        var seen = 0;
        for (var i = 0; i < values.Count; i++)
        {
            if (values[i] is not { } v || !double.IsFinite(v)) continue;
            last = last * weight + (1 - weight) * v;
            seen++;
            smoothed[i] = last / (1 - Math.Pow(weight, seen));
        }
        return smoothed;
    }

    /// <summary>
    /// The smoothing weight for a series of <paramref name="count"/> points: about the last 1 % of the run, so that a
    /// 2,000-step curve averages ~20 steps and a 50-step one stays nearly raw.
    /// </summary>
    public static double DefaultSmoothing(int count) => count < 20 ? 0 : Math.Min(0.99, 1 - 1.0 / Math.Max(2, count / 100.0));

    private static string Format(double? value) => value is { } v && double.IsFinite(v) ? v.ToString("R", CultureInfo.InvariantCulture) : "";

    private static double? Number(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number ? value.GetDouble() : null;

    private static int? Int(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var n) ? n : null;
}
