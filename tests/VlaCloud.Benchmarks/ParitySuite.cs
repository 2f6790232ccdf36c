using VlaCloud.Parity;

namespace VlaCloud.Benchmarks;

/// <summary>
/// Compares the model code against a folder of golden fixtures computed by the upstream code (laid out like
/// <c>tests/fixtures/internvla-m1</c>, any sizes): one <c>max_abs_diff_&lt;output&gt;</c> line per compared output,
/// <c>tokenizer_mismatches</c>, and last <c>parity_failures</c>; the program exits non-zero when any output fails.
/// </summary>
internal sealed class ParitySuite : IBenchmarkSuite
{
    public string Name => "parity";

    public string Description => "model code against upstream golden fixtures: parity <fixture-folder> [group…]";

    public Task RunAsync(Report report, string[] args, CancellationToken cancellationToken)
    {
        if (args.Length == 0 || !Directory.Exists(args[0]))
        {
            Console.Error.WriteLine("usage: parity <fixture-folder> [group…]   (groups: " + string.Join(", ", ParityChecks.All.Select(c => c.Name)) + ")");
            report.Failed = true;
            return Task.CompletedTask;
        }
        var folder = Path.GetFullPath(args[0]);
        var groups = args.Length > 1 ? args[1..].Select(ParityChecks.Named).ToList() : ParityChecks.All.Where(c => c.AppliesTo(folder)).ToList();
        report.Note($"fixtures {folder}; groups {string.Join(", ", groups.Select(g => g.Name))}");
        var failures = 0;
        var tokenizerMismatches = 0;
        foreach (var group in groups)
        {
            cancellationToken.ThrowIfCancellationRequested();
            foreach (var result in group.Run(folder))
            {
                if (result.Mismatches is { } n)
                {
                    if (result.Output.StartsWith("tokenizer", StringComparison.Ordinal)) tokenizerMismatches += n;
                    report.Add($"mismatches_{result.Output}", n);
                }
                else report.Add($"max_abs_diff_{result.Output}", result.MaxAbsDiff);
                if (result.Passed) continue;
                failures++;
                report.Note($"FAILED {result.Output}: {result.Detail ?? $"{result.MaxAbsDiff:G4} > {result.Tolerance:G4}"}");
            }
        }
        report.Add("tokenizer_mismatches", tokenizerMismatches);
        report.Add("parity_failures", failures);
        report.Failed |= failures > 0;
        return Task.CompletedTask;
    }
}
