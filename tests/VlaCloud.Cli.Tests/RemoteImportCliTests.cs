using System.Text.Json.Nodes;
using VlaCloud.Parity;
using VlaCloud.Testing;

namespace VlaCloud.Cli.Tests;

/// <summary><c>vlacloud checkpoints import --remote</c> against the live host (which is also a trainer).</summary>
[Collection(LiveCollection.Name)]
public sealed class RemoteImportCliTests(LiveHost host)
{
    [Fact]
    public async Task Importing_a_released_run_with_remote_uploads_its_bundle_and_the_server_converts_and_registers_it()
    {
        var env = new Dictionary<string, string> { ["VLACLOUD_CONFIG"] = Path.Combine(host.Folder, "remote-import", "config.json") };
        var embodiment = $"widowx-{Guid.NewGuid():N}"[..14];
        var model = $"m1-{Guid.NewGuid():N}"[..12];
        Assert.Equal(0, (await Vlacloud.RunAsync(env, "login", "--url", host.Url, "--api-key", host.DemoKey)).ExitCode);
        var created = await Vlacloud.RunAsync(env, "embodiments", "create", embodiment, "--action-dim", "7", "--state-dim", "0",
            "--action-space", "delta_eef+gripper", "--camera", "front=64x64", "--control-hz", "5", "--chunk-length", "16");
        Assert.True(created.ExitCode == 0, created.ToString());
        var (run, qwen) = StandInInternVlaM1.WriteRun(Path.Combine(host.Folder, $"run-{Guid.NewGuid():N}"), StandInInternVlaM1.Tensors());

        var missing = await Vlacloud.RunAsync(env, "checkpoints", "import", run, "--qwen", qwen);
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("--model", missing.Error);

        var imported = await Vlacloud.RunAsync(env, "checkpoints", "import", run, "--qwen", qwen, "--model", model,
            "--embodiment", $"oxe_bridge={embodiment}", "--json");
        Assert.True(imported.ExitCode == 0, imported.ToString());
        var import = JsonNode.Parse(imported.Out)!;
        Assert.Equal("succeeded", (string)import["status"]!);
        var shown = await Vlacloud.RunAsync(env, "checkpoints", "get", $"{model}@v1", "--json");
        Assert.True(shown.ExitCode == 0, shown.ToString());
        var checkpoint = JsonNode.Parse(shown.Out)!;
        Assert.Equal((string)import["checkpoint_id"]!, (string)checkpoint["id"]!);
        Assert.Equal("internvla-m1", (string)checkpoint["config"]!["family"]!);
    }
}
