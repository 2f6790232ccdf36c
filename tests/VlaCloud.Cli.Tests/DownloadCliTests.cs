using System.Security.Cryptography;
using System.Text.Json.Nodes;
using VlaCloud.Testing;

namespace VlaCloud.Cli.Tests;

[Collection(LiveCollection.Name)]
public sealed class DownloadCliTests(LiveHost host)
{
    [Trait("Category", "Slow")]
    [Fact]
    public async Task Checkpoints_download_writes_the_verified_tar_and_resumes_an_interrupted_download_from_its_part_file()
    {
        var env = new Dictionary<string, string> { ["VLACLOUD_CONFIG"] = Path.Combine(host.Folder, "download/config.json") };
        var embodiment = $"dl-{Guid.NewGuid():N}"[..12];
        var model = $"dl-{Guid.NewGuid():N}"[..12];
        await OkAsync(env, "login", "--url", host.Url, "--api-key", host.DemoKey);
        await OkAsync(env, "embodiments", "create", embodiment, "--sim");
        using var policy = SimPolicy.Create(embodiment);
        var tar = Path.Combine(host.Folder, $"{model}.tar");
        var bytes = SimPolicy.Tar(policy);
        await File.WriteAllBytesAsync(tar, bytes);
        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        await OkAsync(env, "checkpoints", "put", tar, "--model", model, "--embodiment", embodiment);

        var whole = Path.Combine(host.Folder, $"{model}-whole.tar");
        var fresh = JsonNode.Parse((await OkAsync(env, "checkpoints", "download", $"{model}@v1", "--output", whole, "--json")).Out)!;
        Assert.Equal(sha, (string)fresh["sha256"]!);
        Assert.Equal(0, (long)fresh["resumed_from_bytes"]!);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(whole));

        // An interrupted download left its first part behind: the next call fetches only the rest.
        var resumedPath = Path.Combine(host.Folder, $"{model}-resumed.tar");
        await File.WriteAllBytesAsync(resumedPath + ".part", bytes[..(bytes.Length / 3)]);
        var resumed = JsonNode.Parse((await OkAsync(env, "checkpoints", "download", $"{model}@v1", "--output", resumedPath, "--json")).Out)!;
        Assert.Equal(bytes.Length / 3, (long)resumed["resumed_from_bytes"]!);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(resumedPath));
        Assert.False(File.Exists(resumedPath + ".part"));

        // A part file of other bytes fails the sha256 check and is deleted rather than kept as the checkpoint.
        var corruptPath = Path.Combine(host.Folder, $"{model}-corrupt.tar");
        var wrong = bytes[..(bytes.Length / 2)];
        wrong[0] ^= 0xFF;
        await File.WriteAllBytesAsync(corruptPath + ".part", wrong);
        var failed = await Vlacloud.RunAsync(env, "checkpoints", "download", $"{model}@v1", "--output", corruptPath);
        Assert.NotEqual(0, failed.ExitCode);
        Assert.Contains(sha, failed.ToString());
        Assert.False(File.Exists(corruptPath));
        Assert.False(File.Exists(corruptPath + ".part"));
        await OkAsync(env, "checkpoints", "download", $"{model}@v1", "--output", corruptPath);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(corruptPath));
    }

    private static async Task<CliRun> OkAsync(Dictionary<string, string> env, params string[] args)
    {
        var run = await Vlacloud.RunAsync(env, args);
        Assert.True(run.ExitCode == 0, $"vlacloud {string.Join(" ", args)}\n{run}");
        return run;
    }
}
