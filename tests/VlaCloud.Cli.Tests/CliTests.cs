using System.Text.Json;
using System.Text.Json.Nodes;
using VlaCloud.Datasets;
using VlaCloud.Sim;
using VlaCloud.Testing;

namespace VlaCloud.Cli.Tests;

/// <summary>The command line against a live host process, as a user runs it.</summary>
[CollectionDefinition(Name)]
public sealed class LiveCollection : ICollectionFixture<LiveHost>
{
    public const string Name = "live";
}

[Collection(LiveCollection.Name)]
public sealed class CliTests(LiveHost host)
{
    private Dictionary<string, string> Env(string config, params (string Name, string Value)[] extra)
    {
        var env = new Dictionary<string, string> { ["VLACLOUD_CONFIG"] = Path.Combine(host.Folder, config) };
        foreach (var (name, value) in extra) env[name] = value;
        return env;
    }

    private static async Task<CliRun> OkAsync(Dictionary<string, string> env, params string[] args)
    {
        var run = await Vlacloud.RunAsync(env, args);
        Assert.True(run.ExitCode == 0, $"vlacloud {string.Join(" ", args)}\n{run}");
        return run;
    }

    private static JsonNode Json(CliRun run) => JsonNode.Parse(run.Out) ?? throw new InvalidDataException(run.ToString());

    [Trait("Category", "Slow")]
    [Fact]
    public async Task A_user_logs_in_creates_an_embodiment_puts_checkpoints_promotes_rolls_back_acts_and_streams_the_simulator()
    {
        var env = Env("story/config.json");
        var embodiment = $"tabletop-{Guid.NewGuid():N}"[..16];
        var model = $"picker-{Guid.NewGuid():N}"[..13];

        // login saves the profile privately
        var login = await OkAsync(env, "login", "--url", host.Url, "--api-key", host.DemoKey, "--profile", "local");
        Assert.Contains("local", login.Out);
        var configPath = env["VLACLOUD_CONFIG"];
        if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(configPath));
        var saved = JsonNode.Parse(await File.ReadAllTextAsync(configPath))!;
        Assert.Equal("local", (string)saved["default_profile"]!);
        Assert.Equal(host.DemoKey, (string)saved["profiles"]!["local"]!["api_key"]!);

        // embodiments create (the simulator's layout) and list
        await OkAsync(env, "embodiments", "create", embodiment, "--sim", "--profile", "local");
        var embodimentPage = Json(await OkAsync(env, "embodiments", "list", "--json"));
        // --json on a list prints the API's page object, as the API sent it.
        Assert.Equal("list", (string)embodimentPage["object"]!);
        Assert.NotNull(embodimentPage["has_more"]);
        var embodiments = embodimentPage["data"]!.AsArray();
        var created = embodiments.Single(e => (string)e!["name"]! == embodiment)!;
        Assert.Equal(3, (int)created["action_dim"]!);
        Assert.Equal(["main", "wrist"], created["cameras"]!.AsArray().Select(c => (string)c!["name"]!));

        // checkpoints put: a real tiny policy tar, twice (v1 and v2)
        using var policy = SimPolicy.Create(embodiment);
        var tar = Path.Combine(host.Folder, $"{model}.tar");
        await File.WriteAllBytesAsync(tar, SimPolicy.Tar(policy));
        var v1 = Json(await OkAsync(env, "checkpoints", "put", tar, "--model", model, "--embodiment", embodiment, "--json"));
        Assert.Equal(1, (int)v1["version"]!);
        var put = await OkAsync(env, "checkpoints", "put", tar, "--model", model, "--embodiment", embodiment, "--metrics", "{\"success\":0.5}");
        Assert.Contains($"{model}@v2", put.Out);
        var listed = Json(await OkAsync(env, "checkpoints", "list", "--model", model, "--json"))["data"]!.AsArray();
        Assert.Equal([2, 1], listed.Select(c => (int)c!["version"]!));
        var v2 = Json(await OkAsync(env, "checkpoints", "get", $"{model}@v2", "--json"));
        Assert.Equal(0.5, (double)v2["metrics"]!["success"]!);

        // aliases: promote v1, then v2, roll back to v1
        await OkAsync(env, "models", "aliases", "set", model, "production", "v1", "--reason", "first");
        var promoted = await OkAsync(env, "models", "aliases", "set", model, "production", $"{model}@v2");
        Assert.Contains("v2", promoted.Out);
        var rolledBack = Json(await OkAsync(env, "models", "aliases", "rollback", model, "production", "--reason", "regression", "--json"));
        Assert.Equal(1, (int)rolledBack["version"]!);
        var history = Json(await OkAsync(env, "models", "aliases", "history", model, "production", "--json"))["data"]!.AsArray();
        Assert.Equal(3, history.Count);
        Assert.Equal("regression", (string)history[0]!["reason"]!);

        // act on image files through the alias
        var frames = SimPolicy.Frames();
        var images = new List<string>();
        foreach (var (camera, rgb) in frames)
        {
            var file = Path.Combine(host.Folder, $"{camera}.png");
            await File.WriteAllBytesAsync(file, RgbImage.EncodePng(rgb, 64, 64));
            images.AddRange(["--image", $"{camera}={file}"]);
        }
        string[] act = ["act", "--checkpoint", $"{model}@production", .. images, "--state", "0.5,0.5,1", "--instruction", "pick the red cube and place it in the blue bowl", "--seed", "3", "--steps", "4"];
        var acted = Json(await OkAsync(env, [.. act, "--json"]));
        Assert.Equal((string)v1["id"]!, (string)acted["checkpoint"]!["id"]!);
        var actions = acted["actions"]!.AsArray();
        Assert.Equal(SimEmbodiment.Tabletop.ChunkLength, actions.Count);
        Assert.All(actions, row => Assert.Equal(3, row!.AsArray().Count));
        var expected = SimPolicy.Expected(policy, embodiment, 3, 4);
        for (var d = 0; d < 3; d++) Assert.Equal(expected[0, d], (float)actions[0]![d]!, 3);
        var table = await OkAsync(env, act);
        Assert.Contains("dx", table.Out);
        Assert.Contains("gripper", table.Out);

        // stream: a closed-loop simulator episode over the WebSocket
        var streamed = Json(await OkAsync(env, "stream", "--checkpoint", $"{model}@production", "--sim", "--episodes", "1", "--steps", "2", "--json"));
        Assert.Equal(1, (int)streamed["episodes"]!);
        Assert.True((int)streamed["steps"]! > 0);
        Assert.True((int)streamed["requests"]! >= 1);
        Assert.True((double)streamed["latency_p99_ms"]! >= (double)streamed["latency_p50_ms"]!);
        var shown = await OkAsync(env, "stream", "--checkpoint", $"{model}@production", "--sim", "--episodes", "1", "--steps", "2", "--encoding", "json");
        Assert.Contains("control rate", shown.Out);
        Assert.Contains("p99", shown.Out);
        Assert.Contains("success", shown.Out);

        // usage shows the metered requests
        var usage = Json(await OkAsync(env, "usage", "--json"));
        Assert.True((long)usage["total_requests"]! >= 1);
        // ... by model name, not checkpoint id
        Assert.Contains(usage["data"]!.AsArray(), d => (string?)d!["model"] == model && (int?)d["version"] == 1);
        var usageTable = await OkAsync(env, "usage");
        Assert.Contains($"{model}@v1", usageTable.Out);
        Assert.Contains("per model", usageTable.Out);
    }

    [Fact]
    public async Task Refusals_print_the_problem_readably_and_exit_non_zero()
    {
        var env = Env("errors/config.json");
        await OkAsync(env, "login", "--url", host.Url, "--api-key", host.DemoKey);

        var missing = await Vlacloud.RunAsync(env, "checkpoints", "get", "no-such-model@v9");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("Not found", missing.Error);
        Assert.Contains("404", missing.Error);
        Assert.DoesNotContain("   at ", missing.Error);

        var invalid = await Vlacloud.RunAsync(env, "embodiments", "create", "Bad Name!", "--action-dim", "0", "--state-dim", "0",
            "--action-space", "x", "--camera", "main=64x64", "--control-hz", "10", "--chunk-length", "8");
        Assert.Equal(1, invalid.ExitCode);
        Assert.Contains("name", invalid.Error);
        Assert.Contains("action_dim", invalid.Error);

        // the environment overrides the saved profile's key
        var badKey = await Vlacloud.RunAsync(Env("errors/config.json", ("VLACLOUD_API_KEY", "vlc_000000000000_00000000000000000000000000000000")), "embodiments", "list");
        Assert.Equal(1, badKey.ExitCode);
        Assert.Contains("401", badKey.Error);

        var noProfile = await Vlacloud.RunAsync(Env("nobody/config.json"), "usage");
        Assert.Equal(2, noProfile.ExitCode);
        Assert.Contains("vlacloud login", noProfile.Error);

        var unreachable = await Vlacloud.RunAsync(Env("nobody/config.json", ("VLACLOUD_URL", "http://127.0.0.1:9"), ("VLACLOUD_API_KEY", host.DemoKey)), "usage");
        Assert.Equal(3, unreachable.ExitCode);
        Assert.Contains("reach", unreachable.Error);
    }
}
