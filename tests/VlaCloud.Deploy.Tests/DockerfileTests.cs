using System.Text.RegularExpressions;
using VlaCloud.Testing;

namespace VlaCloud.Deploy.Tests;

/// <summary>
/// No Docker engine runs here, so the image is checked in parts: the Dockerfile's shape, and its publish step
/// run as written (with the CPU default of its build argument) on a copy of the build context.
/// </summary>
public sealed partial class DockerfileTests
{
    private static readonly string DockerfilePath = Path.Combine(RepositoryRoot.Path, "Dockerfile");

    [Fact]
    public void The_runtime_stage_is_the_noble_aspnet_image_run_as_a_non_root_user_with_a_health_check()
    {
        var lines = File.ReadAllLines(DockerfilePath).Select(l => l.Trim()).ToList();
        var stages = lines.Where(l => l.StartsWith("FROM ", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, stages.Count);
        Assert.StartsWith("FROM mcr.microsoft.com/dotnet/sdk:10.0-noble", stages[0]);
        Assert.StartsWith("FROM mcr.microsoft.com/dotnet/aspnet:10.0-noble", stages[1]);

        var runtime = lines.SkipWhile(l => l != stages[1]).ToList();
        var user = Assert.Single(runtime, l => l.StartsWith("USER ", StringComparison.Ordinal));
        Assert.DoesNotMatch(@"^USER\s+(root|0)\b", user);
        Assert.Contains(runtime, l => l.StartsWith("HEALTHCHECK ", StringComparison.Ordinal));
        Assert.Contains(runtime, l => l.Contains("/healthz", StringComparison.Ordinal));
        Assert.Contains("ENTRYPOINT [\"dotnet\", \"VlaCloud.Api.dll\"]", runtime);
        Assert.Contains("-p:TorchBackend=${TORCH}", PublishLine());
        Assert.Contains("ARG TORCH=cpu", lines);
    }

    [Trait("Category", "Slow")]
    [Fact]
    public async Task The_dockerfile_publish_step_produces_the_host_and_its_native_libtorch_on_this_machine()
    {
        var arguments = PublishArguments(out var output);
        var context = Directory.CreateTempSubdirectory("vlacloud-docker-context-");
        try
        {
            CopyBuildContext(RepositoryRoot.Path, context.FullName);
            var publishTo = Path.Combine(context.FullName, "app");
            arguments = arguments.Select(a => a == output ? publishTo : a).ToList();

            // Settings of how the build runs here, not of what it builds: no MSBuild nodes outliving the test,
            // and hard links instead of copies of libtorch's hundreds of megabytes.
            var (exitCode, log) = await ExternalTools.RunAsync("dotnet", arguments, context.FullName, TimeSpan.FromMinutes(20),
                new Dictionary<string, string>
                {
                    ["MSBUILDDISABLENODEREUSE"] = "1",
                    ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
                    ["CreateHardLinksForPublishFilesIfPossible"] = "true",
                });
            Assert.True(exitCode == 0, $"dotnet {string.Join(' ', arguments)} failed:\n{Tail(log)}");

            Assert.True(File.Exists(Path.Combine(publishTo, "VlaCloud.Api.dll")), "the host dll is missing");
            Assert.True(File.Exists(Path.Combine(publishTo, "VlaCloud.Api.runtimeconfig.json")), "the runtime config is missing");
            Assert.True(File.Exists(Path.Combine(publishTo, "VlaCloud.Migrations.dll")), "the migrations (for --migrate) are missing");
            Assert.False(File.Exists(Path.Combine(publishTo, "VlaCloud.Api")), "UseAppHost=false should leave no native launcher");

            // The host runs the model (through Inference): the CPU libtorch runtime must ship next to it.
            var natives = Directory.EnumerateFiles(publishTo, "*.so", SearchOption.AllDirectories).Select(Path.GetFileName).ToHashSet();
            Assert.Contains("libLibTorchSharp.so", natives);
            Assert.Contains("libtorch_cpu.so", natives);
            Assert.Contains("TorchSharp.dll", Directory.EnumerateFiles(publishTo).Select(Path.GetFileName));
            Assert.Contains("\"libtorch-cpu-linux-x64/", await File.ReadAllTextAsync(Path.Combine(publishTo, "VlaCloud.Api.deps.json")));
        }
        finally
        {
            context.Delete(recursive: true);
        }
    }

    /// <summary>The <c>RUN dotnet publish</c> line of the build stage.</summary>
    private static string PublishLine() =>
        Assert.Single(File.ReadAllLines(DockerfilePath), l => l.TrimStart().StartsWith("RUN dotnet publish ", StringComparison.Ordinal)).Trim();

    /// <summary>The publish line's arguments with build arguments at their defaults; <paramref name="output"/> is its <c>-o</c> folder.</summary>
    private static List<string> PublishArguments(out string output)
    {
        var defaults = File.ReadAllLines(DockerfilePath)
            .Select(l => ArgLine().Match(l.Trim())).Where(m => m.Success)
            .ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
        var words = PublishLine()["RUN dotnet ".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(w => BuildArgReference().Replace(w, m => defaults[m.Groups[1].Value]))
            .ToList();
        output = words[words.IndexOf("-o") + 1];
        Assert.Equal("-p:TorchBackend=cpu", Assert.Single(words, w => w.StartsWith("-p:TorchBackend=", StringComparison.Ordinal)));
        return words;
    }

    /// <summary>Copies what <c>COPY . .</c> would send, leaving out what <c>.dockerignore</c> names (folder patterns only).</summary>
    private static void CopyBuildContext(string from, string to)
    {
        var ignored = File.ReadAllLines(Path.Combine(from, ".dockerignore"))
            .Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Replace("**/", "").TrimEnd('/')).ToHashSet();
        CopyBuildContext(from, to, ignored);
    }

    private static void CopyBuildContext(string from, string to, HashSet<string> ignored)
    {
        foreach (var directory in Directory.EnumerateDirectories(from))
        {
            if (ignored.Contains(Path.GetFileName(directory))) continue;
            var target = Path.Combine(to, Path.GetFileName(directory));
            Directory.CreateDirectory(target);
            CopyBuildContext(directory, target, ignored);
        }
        foreach (var file in Directory.EnumerateFiles(from))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
    }

    private static string Tail(string log) => log.Length <= 6000 ? log : log[^6000..];

    [GeneratedRegex(@"^ARG\s+(\w+)=(\S+)$")]
    private static partial Regex ArgLine();

    [GeneratedRegex(@"\$\{(\w+)\}")]
    private static partial Regex BuildArgReference();
}
