namespace VlaCloud.Policy.Tests;

/// <summary>
/// Where the golden fixtures (tensors computed by running the upstream code) are: the repository's copy under
/// <c>tests/fixtures/</c>, so a clean clone tests without anything outside it. <c>VLACLOUD_FIXTURES</c> points the
/// tests at another folder laid out the same way (e.g. fixtures of other sizes made with the generator).
/// </summary>
internal static class GoldenFixtures
{
    /// <summary>The repository root (the folder holding <c>VlaCloud.sln</c>).</summary>
    public static string RepositoryRoot { get; } = FindRoot();

    /// <summary>The InternVLA-M1 fixture folder the tests compare against.</summary>
    public static string InternVlaM1 =>
        Environment.GetEnvironmentVariable("VLACLOUD_FIXTURES") is { Length: > 0 } custom ? custom : Path.Combine(RepositoryRoot, "tests", "fixtures", "internvla-m1");

    /// <summary>
    /// A fixture folder of the repository by name, whatever <c>VLACLOUD_FIXTURES</c> says: <c>internvla-m1</c> (config A)
    /// or <c>internvla-m1-b</c> (config B: other sizes, an untied head).
    /// </summary>
    public static string RepositoryFolder(string name) => Path.Combine(RepositoryRoot, "tests", "fixtures", name);

    /// <summary>A file of <see cref="InternVlaM1"/>.</summary>
    public static string File(string name) => Path.Combine(InternVlaM1, name);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (System.IO.File.Exists(Path.Combine(dir.FullName, "VlaCloud.sln"))) return dir.FullName;
        throw new InvalidOperationException($"VlaCloud.sln not found above {AppContext.BaseDirectory}.");
    }
}
