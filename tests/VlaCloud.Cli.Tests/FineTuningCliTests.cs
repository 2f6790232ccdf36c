using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using VlaCloud.Datasets;
using VlaCloud.Sim;
using VlaCloud.Testing;

namespace VlaCloud.Cli.Tests;

/// <summary>Datasets and fine-tuning jobs from the command line, against the live host (which is also a trainer).</summary>
[Collection(LiveCollection.Name)]
public sealed class FineTuningCliTests(LiveHost host)
{
    private Dictionary<string, string> Env(string config) => new() { ["VLACLOUD_CONFIG"] = Path.Combine(host.Folder, config) };

    private static async Task<CliRun> OkAsync(Dictionary<string, string> env, params string[] args)
    {
        var run = await Vlacloud.RunAsync(env, args);
        Assert.True(run.ExitCode == 0, $"vlacloud {string.Join(" ", args)}\n{run}");
        return run;
    }

    private static JsonNode Json(CliRun run) => JsonNode.Parse(run.Out) ?? throw new InvalidDataException(run.ToString());

    /// <summary>Console text without colours, its wrapped lines joined.</summary>
    private static string Plain(string text) => Regex.Replace(text, "\u001b\\[[0-9;]*m", "").ReplaceLineEndings(" ");

    [Trait("Category", "Slow")]
    [Fact]
    public async Task A_user_uploads_a_dataset_fine_tunes_a_checkpoint_follows_the_job_saves_its_loss_curve_promotes_and_acts_on_the_result()
    {
        var env = Env("fine-tuning/config.json");
        var embodiment = $"tabletop-{Guid.NewGuid():N}"[..16];
        var model = $"picker-{Guid.NewGuid():N}"[..13];
        await OkAsync(env, "login", "--url", host.Url, "--api-key", host.DemoKey);
        await OkAsync(env, "embodiments", "create", embodiment, "--sim");
        using var policy = SimPolicy.Create(embodiment);
        var baseTar = Path.Combine(host.Folder, $"{model}.tar");
        await File.WriteAllBytesAsync(baseTar, SimPolicy.Tar(policy));
        var v1 = Json(await OkAsync(env, "checkpoints", "put", baseTar, "--model", model, "--embodiment", embodiment, "--json"));

        // datasets upload: in parts of 64 KiB with a progress bar, then validation
        var data = Path.Combine(host.Folder, $"{embodiment}-demos.tar");
        await File.WriteAllBytesAsync(data, await SimDataset.Tar);
        var uploaded = await OkAsync(env, "datasets", "upload", data, "--embodiment", embodiment, "--part-size", "64K");
        Assert.Contains("ready", uploaded.Out);
        Assert.Contains($"{SimDataset.Episodes} episodes", uploaded.Out);
        var dataset = Json(await OkAsync(env, "datasets", "list", "--status", "ready", "--json"))["data"]!.AsArray()
            .Single(d => (string)d!["name"]! == Path.GetFileName(data))!;
        var datasetId = (string)dataset["id"]!;
        Assert.Equal(SimDataset.Episodes, (int)dataset["episodes"]!);
        Assert.Equal(embodiment, (string)dataset["embodiment"]!);
        var shown = await OkAsync(env, "datasets", "show", datasetId);
        Assert.Contains("ready", shown.Out);
        Assert.Contains(embodiment, shown.Out);

        // jobs create: the model defaults to the base's
        var run = SimDataset.TinyRun;
        var created = Json(await OkAsync(env, "jobs", "create", "--dataset", datasetId, "--base", $"{model}@v1",
            "--steps", $"{run.Steps}", "--batch-size", $"{run.BatchSize}", "--learning-rate", string.Create(CultureInfo.InvariantCulture, $"{run.LearningRate}"),
            "--warmup-steps", $"{run.WarmupSteps}", "--checkpoint-interval", $"{run.CheckpointInterval}", "--seed", $"{run.Seed}", "--mode", "st4vla", "--json"));
        var jobId = (string)created["id"]!;
        Assert.Equal(model, (string)created["model"]!);
        Assert.Equal(run.Steps, (int)created["hyperparameters"]!["steps"]!);
        Assert.Equal(run.BatchSize, (int)created["hyperparameters"]!["batch_size"]!);
        Assert.Contains(Json(await OkAsync(env, "jobs", "list", "--json"))["data"]!.AsArray(), j => (string)j!["id"]! == jobId);

        // jobs follow: the events live, then the final state
        var followed = await OkAsync(env, "jobs", "follow", jobId);
        Assert.Contains("Job started.", followed.Out);
        Assert.Contains($"Registered {model}@v2.", followed.Out);
        Assert.Contains($"Job {jobId} succeeded", Plain(followed.Out));

        var job = Json(await OkAsync(env, "jobs", "show", jobId, "--json"));
        Assert.Equal("succeeded", (string)job["status"]!);
        Assert.Equal(run.Steps, (int)job["step"]!);
        var v2 = Json(await OkAsync(env, "checkpoints", "get", $"{model}@v2", "--json"));
        Assert.Equal((string)job["result_checkpoint_id"]!, (string)v2["id"]!);
        Assert.Equal((string)v1["id"]!, (string)v2["parent_checkpoint_id"]!);
        Assert.Equal(jobId, (string)v2["fine_tuning_job_id"]!);
        Assert.Contains("succeeded", (await OkAsync(env, "jobs", "show", jobId)).Out);

        // the events again as JSON lines, the job's final state last
        var lines = (await OkAsync(env, "jobs", "follow", jobId, "--json")).Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(run.Steps, lines.Count(l => (string)l["type"]! == "metrics"));
        Assert.Equal("fine_tuning.job", (string)lines[^1]["object"]!);

        // jobs loss-curve writes the SVG
        var svg = Path.Combine(host.Folder, "curves", $"{jobId}.svg");
        await OkAsync(env, "jobs", "loss-curve", jobId, "--out", svg);
        var image = await File.ReadAllTextAsync(svg);
        Assert.StartsWith("<svg", image.TrimStart());
        Assert.Contains("<polyline", image);

        // promote the result and act on it through the alias
        await OkAsync(env, "models", "aliases", "set", model, "production", $"{model}@v2", "--reason", "fine-tuned");
        var images = new List<string>();
        foreach (var (camera, rgb) in SimPolicy.Frames())
        {
            var file = Path.Combine(host.Folder, $"{model}-{camera}.png");
            await File.WriteAllBytesAsync(file, RgbImage.EncodePng(rgb, 64, 64));
            images.AddRange(["--image", $"{camera}={file}"]);
        }
        var acted = Json(await OkAsync(env, ["act", "--checkpoint", $"{model}@production", .. images, "--state", "0.5,0.5,1",
            "--instruction", "pick the red cube and place it in the blue bowl", "--seed", "3", "--json"]));
        Assert.Equal((string)v2["id"]!, (string)acted["checkpoint"]!["id"]!);
        Assert.Equal(SimEmbodiment.Tabletop.ChunkLength, acted["actions"]!.AsArray().Count);

        // an ended job cannot be cancelled
        var cancel = await Vlacloud.RunAsync(env, "jobs", "cancel", jobId);
        Assert.Equal(1, cancel.ExitCode);
        Assert.Contains("already succeeded", cancel.Error);
    }

    [Fact]
    public async Task A_broken_archive_fails_validation_with_its_problems_printed_and_a_non_zero_exit()
    {
        var env = Env("broken/config.json");
        var embodiment = $"tabletop-{Guid.NewGuid():N}"[..16];
        await OkAsync(env, "login", "--url", host.Url, "--api-key", host.DemoKey);
        await OkAsync(env, "embodiments", "create", embodiment, "--sim");
        var file = Path.Combine(host.Folder, $"{embodiment}-broken.tar");
        await File.WriteAllBytesAsync(file, SimDataset.Broken);

        var upload = await Vlacloud.RunAsync(env, "datasets", "upload", file, "--embodiment", embodiment, "--part-size", "2K");
        Assert.True(upload.ExitCode == 4, upload.ToString());
        Assert.Contains("failed validation", upload.Error);
        var failed = Json(await OkAsync(env, "datasets", "list", "--status", "failed", "--json"))["data"]!.AsArray()
            .Single(d => (string)d!["name"]! == Path.GetFileName(file))!;
        var issues = failed["issues"]!.AsArray();
        Assert.NotEmpty(issues);
        foreach (var issue in issues) Assert.Contains((string)issue!["message"]!, Plain(upload.Error));

        // --json prints the failed dataset and keeps the exit code
        var asJson = await Vlacloud.RunAsync(env, "datasets", "upload", file, "--embodiment", embodiment, "--json");
        Assert.Equal(4, asJson.ExitCode);
        Assert.Equal("failed", (string)Json(asJson)["status"]!);

        // a job on a failed dataset is refused
        var job = await Vlacloud.RunAsync(env, "jobs", "create", "--dataset", (string)failed["id"]!, "--base", "sim-demo@production", "--model", "nope");
        Assert.Equal(1, job.ExitCode);
        Assert.Contains("only a ready dataset", Plain(job.Error));
    }
}
