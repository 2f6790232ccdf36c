using System.Reflection;
using VlaCloud.Policy.Checkpoint;
using static TorchSharp.torch;

namespace VlaCloud.Parity;

/// <summary>
/// One compared output: the largest absolute difference between the code's tensor and the fixture's
/// (<see cref="MaxAbsDiff"/>), or a count of mismatching items for discrete outputs (token ids, generated tokens),
/// reported as <see cref="Mismatches"/> with <see cref="MaxAbsDiff"/> 0.
/// </summary>
/// <param name="Output">Name printed as <c>max_abs_diff_&lt;Output&gt;</c>.</param>
/// <param name="MaxAbsDiff">Largest absolute difference (float outputs).</param>
/// <param name="Tolerance">The largest difference that passes.</param>
/// <param name="Mismatches">Items that differ (discrete outputs); null for float outputs.</param>
/// <param name="Detail">What differed first, for a failing discrete output.</param>
public sealed record ParityResult(string Output, double MaxAbsDiff, double Tolerance, int? Mismatches = null, string? Detail = null)
{
    /// <summary>Whether the output is within tolerance (and, for discrete outputs, nothing differs).</summary>
    public bool Passed => MaxAbsDiff <= Tolerance && (Mismatches ?? 0) == 0 && !double.IsNaN(MaxAbsDiff);

    /// <summary>The float tolerance of the issues: 1e-4 in float32.</summary>
    public const double DefaultTolerance = 1e-4;

    /// <summary>Compares two tensors of the same shape (the fixture's shape is checked first).</summary>
    public static ParityResult Compare(string output, Tensor actual, Tensor expected, double tolerance = DefaultTolerance)
    {
        if (!actual.shape.SequenceEqual(expected.shape))
            return new ParityResult(output, double.PositiveInfinity, tolerance, Detail: $"shape [{string.Join(", ", actual.shape)}] but the fixture has [{string.Join(", ", expected.shape)}]");
        using var scope = NewDisposeScope();
        var diff = (actual.to(float64).cpu() - expected.to(float64).cpu()).abs();
        var max = diff.numel() == 0 ? 0 : diff.max().item<double>();
        return new ParityResult(output, max, tolerance);
    }

    /// <summary>Compares two sequences of discrete items (ids, tokens) position by position.</summary>
    public static ParityResult CompareExact<T>(string output, IReadOnlyList<T> actual, IReadOnlyList<T> expected)
    {
        var mismatches = Math.Abs(actual.Count - expected.Count);
        string? first = null;
        for (var i = 0; i < Math.Min(actual.Count, expected.Count); i++)
        {
            if (EqualityComparer<T>.Default.Equals(actual[i], expected[i])) continue;
            mismatches++;
            first ??= $"at {i}: {actual[i]} but the fixture has {expected[i]}";
        }
        if (first is null && actual.Count != expected.Count) first = $"{actual.Count} items but the fixture has {expected.Count}";
        return new ParityResult(output, 0, 0, mismatches, first);
    }
}

/// <summary>
/// A group of parity comparisons over one fixture folder (laid out like <c>tests/fixtures/internvla-m1</c>). Every size
/// is read from the folder's configs, never assumed. Implementations are found by reflection, like benchmark suites.
/// </summary>
public interface IParityCheck
{
    /// <summary>Short name of the group (e.g. <c>qwen25vl</c>).</summary>
    string Name { get; }

    /// <summary>Whether the folder has this group's fixture files.</summary>
    bool AppliesTo(string folder);

    /// <summary>Runs the comparisons; each result is one output.</summary>
    IEnumerable<ParityResult> Run(string folder);
}

/// <summary>Finds and runs every <see cref="IParityCheck"/> of this assembly.</summary>
public static class ParityChecks
{
    /// <summary>Every parity group, by name.</summary>
    public static IReadOnlyList<IParityCheck> All { get; } = typeof(ParityChecks).Assembly.GetTypes()
        .Where(t => t is { IsClass: true, IsAbstract: false } && typeof(IParityCheck).IsAssignableFrom(t))
        .Select(t => (IParityCheck)Activator.CreateInstance(t)!)
        .OrderBy(c => c.Name, StringComparer.Ordinal)
        .ToList();

    /// <summary>The group of this name.</summary>
    public static IParityCheck Named(string name) =>
        All.FirstOrDefault(c => c.Name == name) ?? throw new ArgumentException($"no parity group '{name}' (there are: {string.Join(", ", All.Select(c => c.Name))})");

    /// <summary>Opens a safetensors file of a fixture folder.</summary>
    public static SafetensorsFile Open(string folder, string file) => SafetensorsFile.Open(Path.Combine(folder, file));
}
