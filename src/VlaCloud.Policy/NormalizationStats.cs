using System.Text.Json;
using System.Text.Json.Serialization;

namespace VlaCloud.Policy;

/// <summary>Statistics of one vector feature (state or action), one entry per dimension.</summary>
public sealed record FeatureStats(float[] Mean, float[] Std, float[] Q01, float[] Q99)
{
    /// <summary>Number of dimensions.</summary>
    [JsonIgnore] public int Dim => Mean.Length;

    /// <summary>Computes the statistics of rows of values (each row one sample).</summary>
    public static FeatureStats Compute(IReadOnlyList<float[]> rows)
    {
        if (rows.Count == 0) throw new ArgumentException("no rows to compute statistics from");
        var dim = rows[0].Length;
        float[] mean = new float[dim], std = new float[dim], q01 = new float[dim], q99 = new float[dim];
        var column = new double[rows.Count];
        for (var d = 0; d < dim; d++)
        {
            for (var i = 0; i < rows.Count; i++) column[i] = rows[i][d];
            var m = column.Average();
            mean[d] = (float)m;
            std[d] = (float)Math.Sqrt(column.Sum(v => (v - m) * (v - m)) / column.Length);
            Array.Sort(column);
            q01[d] = (float)Quantile(column, 0.01);
            q99[d] = (float)Quantile(column, 0.99);
        }
        return new FeatureStats(mean, std, q01, q99);
    }

    private static double Quantile(double[] sorted, double q)
    {
        var pos = q * (sorted.Length - 1);
        var lo = (int)Math.Floor(pos);
        var hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }

    internal void Validate(string what)
    {
        if (Std.Length != Dim || Q01.Length != Dim || Q99.Length != Dim)
            throw new ArgumentException($"{what} statistics have arrays of different lengths");
    }
}

/// <summary>How features are mapped into the model's range.</summary>
public enum NormalizationMode
{
    /// <summary><c>2(x − q01)/(q99 − q01) − 1</c>, clamped to [−1, 1] (InternVLA-M1's default).</summary>
    Q99,
    /// <summary><c>(x − mean)/std</c>.</summary>
    MeanStd,
}

/// <summary>
/// Per-embodiment statistics: applied to state and actions on the way into the model and undone on
/// actions on the way out. <see cref="BinaryActionDims"/> (e.g. a gripper) are 0/1 in embodiment
/// units, ±1 inside the model, and thresholded at 0 on the way out.
/// </summary>
public sealed record NormalizationStats(FeatureStats Action, FeatureStats? State = null, NormalizationMode Mode = NormalizationMode.Q99, int[]? BinaryActionDims = null)
{
    /// <summary>The embodiment's action dimension.</summary>
    [JsonIgnore] public int ActionDim => Action.Dim;

    /// <summary>The embodiment's state dimension (0 without state statistics).</summary>
    [JsonIgnore] public int StateDim => State?.Dim ?? 0;

    /// <summary>Actions (embodiment units) → model range, in place on a copy.</summary>
    public float[] NormalizeAction(ReadOnlySpan<float> action)
    {
        var y = Normalize(action, Action);
        foreach (var d in BinaryActionDims ?? []) y[d] = action[d] > 0.5f ? 1f : -1f;
        return y;
    }

    /// <summary>Model range → actions in embodiment units.</summary>
    public float[] UnnormalizeAction(ReadOnlySpan<float> normalized)
    {
        var x = new float[Action.Dim];
        UnnormalizeAction(normalized, x);
        return x;
    }

    /// <summary>
    /// Model range → actions in embodiment units, written into <paramref name="x"/> (<see cref="ActionDim"/> values): how
    /// sampling fills an <see cref="VlaCloud.Actions.ActionChunk"/>'s rows in place.
    /// </summary>
    public void UnnormalizeAction(ReadOnlySpan<float> normalized, Span<float> x)
    {
        var s = Action;
        for (var d = 0; d < s.Dim; d++)
        {
            x[d] = Mode == NormalizationMode.Q99
                ? (Math.Clamp(normalized[d], -1f, 1f) + 1f) / 2f * (s.Q99[d] - s.Q01[d]) + s.Q01[d]
                : normalized[d] * Math.Max(s.Std[d], 1e-8f) + s.Mean[d];
        }
        foreach (var d in BinaryActionDims ?? []) x[d] = normalized[d] > 0 ? 1f : 0f;
    }

    /// <summary>State (embodiment units) → model range.</summary>
    public float[] NormalizeState(ReadOnlySpan<float> state) =>
        State is null ? throw new InvalidOperationException("these statistics have no state part") : Normalize(state, State);

    private float[] Normalize(ReadOnlySpan<float> x, FeatureStats s)
    {
        if (x.Length != s.Dim) throw new ArgumentException($"expected {s.Dim} values, got {x.Length}");
        var y = new float[s.Dim];
        for (var d = 0; d < s.Dim; d++)
        {
            if (Mode == NormalizationMode.Q99)
            {
                var range = s.Q99[d] - s.Q01[d];
                // A constant dimension maps to 0 rather than dividing by zero.
                y[d] = range < 1e-8f ? 0f : Math.Clamp(2f * (x[d] - s.Q01[d]) / range - 1f, -1f, 1f);
            }
            else
            {
                y[d] = (x[d] - s.Mean[d]) / Math.Max(s.Std[d], 1e-8f);
            }
        }
        return y;
    }

    internal void Validate(PolicyConfig config, string name)
    {
        Action.Validate($"'{name}' action");
        State?.Validate($"'{name}' state");
        if (ActionDim > config.MaxActionDim) throw new ArgumentException($"embodiment '{name}' has {ActionDim} action dims; the model holds at most {config.MaxActionDim}");
        if (StateDim > config.MaxStateDim) throw new ArgumentException($"embodiment '{name}' has {StateDim} state dims; the model holds at most {config.MaxStateDim}");
        foreach (var d in BinaryActionDims ?? [])
            if (d < 0 || d >= ActionDim) throw new ArgumentException($"embodiment '{name}': binary action dim {d} is out of range");
    }

    /// <summary>Writes statistics per embodiment name (the checkpoint's normalization.json).</summary>
    public static string ToJson(IReadOnlyDictionary<string, NormalizationStats> stats) => JsonSerializer.Serialize(stats, JsonOptions);

    /// <summary>Reads statistics per embodiment name.</summary>
    public static Dictionary<string, NormalizationStats> FromJson(string json) =>
        JsonSerializer.Deserialize<Dictionary<string, NormalizationStats>>(json, JsonOptions) ?? throw new InvalidDataException("normalization.json is empty");

    private static readonly JsonSerializerOptions JsonOptions = new(PolicyConfig.JsonOptions)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };
}
