using VlaCloud.Parity;

namespace VlaCloud.Policy.Tests;

/// <summary>
/// Every parity group (tests/VlaCloud.Parity) against the golden fixtures: each compared output within 1e-4 in float32,
/// discrete outputs (token ids, greedy generations) identical. The benchmark program's <c>parity</c> suite runs the same
/// comparisons on any fixture folder.
/// </summary>
public sealed class ParityTests
{
    public static TheoryData<string> Groups() => [.. ParityChecks.All.Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(Groups))]
    public void Every_output_of_the_group_matches_the_upstream_fixture(string group)
    {
        var check = ParityChecks.Named(group);
        Assert.True(check.AppliesTo(GoldenFixtures.InternVlaM1), $"the fixture folder has no files for {group}");
        var results = check.Run(GoldenFixtures.InternVlaM1).ToList();
        Assert.NotEmpty(results);
        var failed = results.Where(r => !r.Passed).Select(r => $"{r.Output}: {r.Detail ?? $"max abs diff {r.MaxAbsDiff:G4} > {r.Tolerance:G4}"}").ToList();
        Assert.True(failed.Count == 0, string.Join("\n", failed));
    }
}
