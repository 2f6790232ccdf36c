using VlaCloud.Parity;

namespace VlaCloud.Policy.Tests;

/// <summary>
/// Every parity group (tests/VlaCloud.Parity) against every golden fixture folder it has files in — config A and
/// config B of the repository, plus <c>VLACLOUD_FIXTURES</c> when set: each compared output within 1e-4 in float32,
/// discrete outputs (token ids, greedy generations) identical. The benchmark program's <c>parity</c> suite runs the same
/// comparisons on any folder.
/// </summary>
public sealed class ParityTests
{
    private static IEnumerable<string> Folders()
    {
        yield return GoldenFixtures.RepositoryFolder("internvla-m1");
        yield return GoldenFixtures.RepositoryFolder("internvla-m1-b");
        if (Environment.GetEnvironmentVariable("VLACLOUD_FIXTURES") is { Length: > 0 } custom) yield return custom;
    }

    public static TheoryData<string, string> GroupsAndFolders()
    {
        var data = new TheoryData<string, string>();
        foreach (var folder in Folders())
        foreach (var check in ParityChecks.All.Where(c => c.AppliesTo(folder)))
            data.Add(check.Name, Path.GetRelativePath(GoldenFixtures.RepositoryRoot, folder));
        return data;
    }

    [Theory]
    [MemberData(nameof(GroupsAndFolders))]
    public void Every_output_of_the_group_matches_the_upstream_fixture(string group, string folder)
    {
        var results = ParityChecks.Named(group).Run(Path.GetFullPath(folder, GoldenFixtures.RepositoryRoot)).ToList();
        Assert.NotEmpty(results);
        var failed = results.Where(r => !r.Passed).Select(r => $"{r.Output}: {r.Detail ?? $"max abs diff {r.MaxAbsDiff:G4} > {r.Tolerance:G4}"}").ToList();
        Assert.True(failed.Count == 0, string.Join("\n", failed));
    }

    [Fact]
    public void Both_repository_fixture_folders_have_parity_groups_to_run()
    {
        foreach (var folder in Folders().Take(2))
            Assert.True(ParityChecks.All.Count(c => c.AppliesTo(folder)) >= 1, $"no parity group applies to {folder}");
    }
}
