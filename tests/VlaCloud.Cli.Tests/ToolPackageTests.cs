using System.Diagnostics;
using System.IO.Compression;
using VlaCloud.Testing;

namespace VlaCloud.Cli.Tests;

/// <summary>
/// <c>vlacloud</c> ships as a <c>dotnet tool</c> without libtorch: packed from the built CLI, installed from that
/// package alone (no other feed), and run as an installed command.
/// </summary>
public sealed class ToolPackageTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("vlacloud-tool-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    [Fact]
    [Trait("Category", "Slow")]
    public async Task The_cli_packs_as_a_dotnet_tool_without_libtorch_installs_from_its_package_and_runs()
    {
        var packages = Path.Combine(folder, "packages");
        var pack = await RunAsync("dotnet", "pack", Path.Combine(RepositoryRoot.Path, "src/VlaCloud.Cli/VlaCloud.Cli.csproj"),
            "-c", "Release", "--no-build", "-o", packages, "-p:PublishDir=" + Path.Combine(folder, "publish") + "/");
        Assert.True(pack.ExitCode == 0, pack.ToString());
        var package = Assert.Single(Directory.GetFiles(packages, "VlaCloud.Cli.*.nupkg"));

        using (var zip = ZipFile.OpenRead(package))
        {
            var entries = zip.Entries.Select(e => e.FullName).ToList();
            Assert.Contains(entries, e => e.EndsWith("/vlacloud.dll", StringComparison.Ordinal));
            Assert.Contains(entries, e => e.EndsWith("DotnetToolSettings.xml", StringComparison.Ordinal));
            Assert.DoesNotContain(entries, e => e.Contains("torch", StringComparison.OrdinalIgnoreCase));
            Assert.DoesNotContain(entries, e => e.Contains("VlaCloud.Policy", StringComparison.Ordinal) || e.Contains("VlaCloud.Training", StringComparison.Ordinal));
        }

        // Only the package folder as a feed: the tool must carry everything it runs with.
        var config = Path.Combine(folder, "nuget.config");
        await File.WriteAllTextAsync(config, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="local" value="{packages}" />
              </packageSources>
            </configuration>
            """);
        var tools = Path.Combine(folder, "bin");
        var install = await RunAsync(freshNuGetCache: true, "dotnet", "tool", "install", "VlaCloud.Cli", "--tool-path", tools, "--configfile", config);
        Assert.True(install.ExitCode == 0, install.ToString());

        var vlacloud = Path.Combine(tools, "vlacloud");
        var help = await RunAsync(vlacloud, "--help");
        Assert.True(help.ExitCode == 0, help.ToString());
        Assert.Contains("checkpoints", help.Out);
        Assert.DoesNotContain("train", (await RunAsync(vlacloud, "sim", "--help")).Out);
        // The simulator's renderer is native (SkiaSharp): a rollout proves the package carries it.
        var rollout = await RunAsync(vlacloud, "sim", "rollout", "--frames", Path.Combine(folder, "frames"));
        Assert.True(rollout.ExitCode == 0, rollout.ToString());
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(folder, "frames"), "main_000.png"));
    }

    private Task<CliRun> RunAsync(string program, params string[] args) => RunAsync(freshNuGetCache: false, program, args);

    private async Task<CliRun> RunAsync(bool freshNuGetCache, string program, params string[] args)
    {
        var start = new ProcessStartInfo(program, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = folder,
        };
        // A fresh NuGet cache keeps the install honest: nothing it needs can come from packages restored before.
        if (freshNuGetCache) start.Environment["NUGET_PACKAGES"] = Path.Combine(folder, "nuget-cache");
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["VLACLOUD_CONFIG"] = Path.Combine(folder, "config.json");
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        return new CliRun(process.ExitCode, await stdout, await stderr);
    }
}
