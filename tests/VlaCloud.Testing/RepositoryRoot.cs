namespace VlaCloud.Testing;

/// <summary>Finds files of the checkout the tests were built from.</summary>
public static class RepositoryRoot
{
    /// <summary>The folder that holds <c>VlaCloud.sln</c>.</summary>
    public static string Path { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "VlaCloud.sln"))) return dir.FullName;
        throw new InvalidOperationException($"VlaCloud.sln not found above {AppContext.BaseDirectory}.");
    }
}
