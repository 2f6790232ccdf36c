using System.Diagnostics;
using VlaCloud.Testing;

namespace VlaCloud.Cli.Tests;

/// <summary>The outcome of one <c>vlacloud</c> run.</summary>
public sealed record CliRun(int ExitCode, string Out, string Error)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Out}\n--- stderr\n{Error}";
}

/// <summary>
/// Runs the built command lines as a user would: <c>vlacloud</c> (<c>src/VlaCloud.Cli/bin/Release/net10.0/vlacloud.dll</c>)
/// and <c>vlacloud-lab</c> (<c>src/VlaCloud.Lab/…/vlacloud-lab.dll</c>).
/// </summary>
public static class Vlacloud
{
    /// <summary>Runs <c>vlacloud</c>.</summary>
    public static Task<CliRun> RunAsync(IReadOnlyDictionary<string, string> environment, params string[] args) =>
        RunToolAsync("src/VlaCloud.Cli/bin/Release/net10.0/vlacloud.dll", environment, args, TimeSpan.FromMinutes(3));

    /// <summary>
    /// Runs <c>vlacloud-lab</c>. Its commands train and evaluate models, which on a loaded 2-core CI machine can take
    /// several times their quiet-machine minute, so it gets a longer limit than the client.
    /// </summary>
    public static Task<CliRun> RunLabAsync(IReadOnlyDictionary<string, string> environment, params string[] args) =>
        RunToolAsync("src/VlaCloud.Lab/bin/Release/net10.0/vlacloud-lab.dll", environment, args, TimeSpan.FromMinutes(15));

    private static async Task<CliRun> RunToolAsync(string relativeDll, IReadOnlyDictionary<string, string> environment, string[] args, TimeSpan limit)
    {
        var dll = Path.Combine(RepositoryRoot.Path, relativeDll);
        var start = new ProcessStartInfo("dotnet", [dll, .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var name in new[] { "VLACLOUD_URL", "VLACLOUD_API_KEY", "VLACLOUD_PROFILE" }) start.Environment.Remove(name);
        foreach (var (name, value) in environment) start.Environment[name] = value;
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{Path.GetFileName(dll)} {string.Join(" ", args)} still running after {limit}");
        }
        return new CliRun(process.ExitCode, await stdout, await stderr);
    }
}
