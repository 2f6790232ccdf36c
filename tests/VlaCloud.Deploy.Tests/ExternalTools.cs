using System.Diagnostics;
using System.Text;
using VlaCloud.Testing;

namespace VlaCloud.Deploy.Tests;

/// <summary>
/// The command-line tools these tests drive (helm, redocly), installed by <c>bash .ci/tools</c>. A missing tool
/// fails the test with the command that installs it: a deployment check that silently skips checks nothing.
/// </summary>
internal static class ExternalTools
{
    public static string Helm => Find("VLACLOUD_HELM", "helm");

    public static string Redocly => Find("VLACLOUD_REDOCLY", "redocly");

    private static string Find(string variable, string name)
    {
        var path = Environment.GetEnvironmentVariable(variable) is { Length: > 0 } configured
            ? configured
            : Path.Combine(RepositoryRoot.Path, ".local", "tools", "bin", name);
        Assert.True(File.Exists(path),
            $"{name} is not installed at {path}. Install the test tools with `bash .ci/tools` " +
            $"(`bash .ci/test` does it), or point {variable} at a {name} binary.");
        return path;
    }

    /// <summary>Runs a program to its end and returns its exit code and combined output.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(
        string fileName, IEnumerable<string> arguments, string? workingDirectory = null, TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(fileName, arguments)
        {
            WorkingDirectory = workingDirectory ?? RepositoryRoot.Path,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Colour codes would get in the way of assertions on the text.
        start.Environment["NO_COLOR"] = "1";
        start.Environment["FORCE_COLOR"] = "0";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{fileName} did not start.");
        var output = new StringBuilder();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{Path.GetFileName(fileName)} {string.Join(' ', arguments)} did not finish in time.");
        }
        output.Append(await stdout).Append(await stderr);
        return (process.ExitCode, output.ToString());
    }
}
