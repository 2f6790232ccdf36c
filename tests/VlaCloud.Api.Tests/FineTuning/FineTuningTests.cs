using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.ServerSentEvents;
using System.Net.Http.Json;
using System.Text.Json;
using VlaCloud.Api.Apis;
using VlaCloud.Datasets;
using VlaCloud.Policy;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.FineTuning;

[Collection(FineTuningCollection.Name)]
public sealed class FineTuningTests(ServicesFixture services) : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("vlacloud-ft-").FullName;

    private static readonly object TinyRun = new { steps = 6, batch_size = 4, learning_rate = 1e-3, warmup_steps = 1, checkpoint_interval = 3, seed = 5 };

    [Trait("Category", "Slow")]
    [Fact]
    public async Task A_sim_dataset_uploaded_in_parts_trains_into_the_next_version_which_is_promoted_and_served()
    {
        await using var app = new VlaCloudAppFactory(services, FineTuningWorld.Settings(root, trainer: true));
        var world = await FineTuningWorld.CreateAsync(app);
        var tar = await FineTuningWorld.SimDatasetTar;

        var upload = await world.UploadPartsAsync(tar, 3);
        // Part 2 again, first with wrong bytes, then right: a retried part replaces the earlier one.
        var size = (tar.Length + 2) / 3;
        Assert.Equal(HttpStatusCode.OK, (await world.PutPartAsync(upload, 2, new byte[size])).StatusCode);
        var wrong = await world.Client.PostAsJsonAsync($"/v1/uploads/{upload}/complete", new CompleteUploadRequest());
        Assert.Equal(HttpStatusCode.Conflict, wrong.StatusCode);
        Assert.Contains("SHA-256", await wrong.Content.ReadAsStringAsync());
        Assert.Empty((await world.Client.GetFromJsonAsync<ListPage<DatasetResponse>>("/v1/datasets"))!.Data);
        Assert.Equal(HttpStatusCode.OK, (await world.PutPartAsync(upload, 2, tar[size..(2 * size)])).StatusCode);

        var dataset = await world.CompleteDatasetAsync(upload);
        Assert.True(dataset.Status == "ready", string.Join("; ", dataset.Issues.Select(i => $"{i.File}: {i.Message}")));
        Assert.Equal(4, dataset.Episodes);
        Assert.Equal(FineTuningWorld.Sha(tar), dataset.ArtifactSha256);

        var job = await world.CreateJobAsync(dataset.Id, TinyRun, evaluate: true, promoteTo: "production", evaluationEpisodes: 2);
        Assert.Equal("queued", job.Status);
        job = await world.WaitForJobAsync(job.Id, j => j.Status == "succeeded", TimeSpan.FromMinutes(5), "job did not succeed");

        var result = (await world.Client.GetFromJsonAsync<CheckpointResponse>($"/v1/checkpoints/{job.ResultCheckpointId}"))!;
        Assert.Equal((world.Model, 2), (result.Model, result.Version));
        Assert.Equal((world.BaseId, dataset.Id, job.Id), (result.ParentCheckpointId!.Value, result.DatasetId!.Value, result.FineTuningJobId!.Value));
        var evaluation = result.Metrics.GetProperty("evaluation");
        Assert.Equal(2, evaluation.GetProperty("episodes").GetInt32());
        Assert.InRange(evaluation.GetProperty("target_first").GetInt32(), 0, 2);
        Assert.InRange(evaluation.GetProperty("mean_progress").GetDouble(), 0, 1);
        Assert.True(job.Promoted);
        var alias = (await world.Client.GetFromJsonAsync<AliasResponse>($"/v1/models/{world.Model}/aliases/production"))!;
        Assert.Equal(result.Id, alias.CheckpointId);

        var states = (await world.Client.GetFromJsonAsync<ListPage<JobCheckpointResponse>>($"/v1/fine_tuning/jobs/{job.Id}/checkpoints"))!;
        Assert.Equal([3], states.Data.Select(c => c.Step));
        Assert.True(states.Data[0].Metrics.GetProperty("loss").GetDouble() > 0);

        var events = await world.EventsAsync(job.Id);
        Assert.Equal(6, events.Count(e => e.Type == "metrics"));
        Assert.Equal(events.Select(e => e.Id).Order(), events.Select(e => e.Id));
        var svg = await world.Client.GetAsync($"/v1/fine_tuning/jobs/{job.Id}/loss_curve");
        Assert.Equal("image/svg+xml", svg.Content.Headers.ContentType?.MediaType);
        Assert.Contains("<polyline", await svg.Content.ReadAsStringAsync());

        // The stream replays everything and ends with the final status.
        await using var stream = await world.Client.GetStreamAsync($"/v1/fine_tuning/jobs/{job.Id}/events/stream");
        var items = new List<SseItem<string>>();
        await foreach (var item in SseParser.Create(stream).EnumerateAsync()) items.Add(item);
        Assert.Equal(events.Select(e => e.Id.ToString(CultureInfo.InvariantCulture)), items.Where(i => i.EventId is not null).Select(i => i.EventId));
        Assert.Equal("done", items[^1].EventType);
        Assert.All(items.SkipLast(1), i => Assert.Equal(TimeSpan.FromSeconds(2), i.ReconnectionInterval));

        // A reconnecting EventSource sends the last id it saw and gets only what followed.
        using var resume = new HttpRequestMessage(HttpMethod.Get, $"/v1/fine_tuning/jobs/{job.Id}/events/stream");
        resume.Headers.Add("Last-Event-ID", events[^2].Id.ToString(CultureInfo.InvariantCulture));
        using var resumed = await world.Client.SendAsync(resume);
        var rest = new List<SseItem<string>>();
        await foreach (var item in SseParser.Create(await resumed.Content.ReadAsStreamAsync()).EnumerateAsync()) rest.Add(item);
        Assert.Equal([events[^1].Id.ToString(CultureInfo.InvariantCulture), null], rest.Select(i => i.EventId));

        var observation = new ObservationInput(
            FineTuningWorld.Sim.Cameras.ToDictionary(c => c.Name, c => new ImageInput("raw", new byte[c.Width * c.Height * 3], [c.Height, c.Width, 3])),
            [0.5f, 0.5f, 0f], "pick the red cube and place it in the blue bowl");
        var act = await world.Client.PostAsJsonAsync("/v1/act", new ActRequest($"{world.Model}@production", observation, new ActOptions(Steps: 2, Seed: 1)));
        Assert.True(act.StatusCode == HttpStatusCode.OK, await act.Content.ReadAsStringAsync());
        var actions = (await act.Content.ReadFromJsonAsync<ActResponse>())!;
        Assert.Equal((result.Id, 2), (actions.Checkpoint.Id, actions.Checkpoint.Version));
        Assert.Equal(FineTuningWorld.Sim.ActionDim, actions.Actions[0].Length);
    }

    [Trait("Category", "Slow")]
    [Fact]
    public async Task Metrics_written_in_batches_still_give_the_metrics_route_every_step_once()
    {
        // Batches of 4 steps, or every 5 s (far longer than this job's loop), so most writes carry several steps at once.
        var settings = FineTuningWorld.Settings(root, trainer: true);
        settings["VlaCloud:FineTuning:EventFlushSteps"] = "4";
        settings["VlaCloud:FineTuning:EventFlushInterval"] = "00:00:05";
        settings["VlaCloud:FineTuning:PollInterval"] = "00:00:05";
        await using var app = new VlaCloudAppFactory(services, settings);
        var world = await FineTuningWorld.CreateAsync(app);
        var dataset = await world.CompleteDatasetAsync(await world.UploadPartsAsync(await FineTuningWorld.SimDatasetTar, 1));
        Assert.Equal("ready", dataset.Status);

        var job = await world.CreateJobAsync(dataset.Id, new { steps = 14, batch_size = 2, learning_rate = 1e-3, warmup_steps = 1, checkpoint_interval = 5, seed = 5 });
        job = await world.WaitForJobAsync(job.Id, j => j.Status is "succeeded" or "failed", TimeSpan.FromMinutes(5), "job did not end");
        var events = await world.EventsAsync(job.Id);
        Assert.True(job.Status == "succeeded", string.Join("\n", events.Select(e => e.Message)));

        var metrics = (await world.Client.GetFromJsonAsync<JobMetricsResponse>($"/v1/fine_tuning/jobs/{job.Id}/metrics"))!;
        Assert.Equal(Enumerable.Range(1, 14), metrics.Steps.Select(s => s.Step));
        Assert.All(metrics.Steps, s => Assert.True(s.Loss > 0));
        Assert.Equal([5, 10], metrics.SavedSteps);
        var steps = events.Where(e => e.Type == "metrics").Select(e => e.Data.GetProperty("step").GetInt32()).ToList();
        Assert.Equal(Enumerable.Range(1, 14), steps);
        Assert.All(events.Where(e => e.Type == "metrics"), e => Assert.StartsWith($"Step {e.Data.GetProperty("step").GetInt32()}/14: loss ", e.Message));
        Assert.Equal(events.Select(e => e.Id).Order(), events.Select(e => e.Id));
        Assert.Equal(14, job.Step);
    }

    [Trait("Category", "Slow")]
    [Fact]
    public async Task An_internvla_m1_base_co_trains_on_actions_and_spatial_answers_and_its_result_is_registered_and_served()
    {
        await using var app = new VlaCloudAppFactory(services, FineTuningWorld.Settings(root, trainer: true));
        var world = await FineTuningWorld.CreateAsync(app, FineTuningWorld.BaseConfig(PolicyConfig.InternVlaM1Family));
        var dataset = await world.CompleteDatasetAsync(await world.UploadPartsAsync(await FineTuningWorld.SimDatasetTar, 1));
        Assert.Equal("ready", dataset.Status);

        var job = await world.CreateJobAsync(dataset.Id, TinyRun);
        job = await world.WaitForJobAsync(job.Id, j => j.Status is "succeeded" or "failed", TimeSpan.FromMinutes(5), "job did not end");
        var events = await world.EventsAsync(job.Id);
        Assert.True(job.Status == "succeeded", string.Join("\n", events.Select(e => e.Message)));
        // Every step is co-training: the action loss and the VLM loss on spatial answers.
        var metrics = events.Where(e => e.Type == "metrics").ToList();
        Assert.NotEmpty(metrics);
        Assert.All(metrics, m => Assert.True(m.Data.GetProperty("action_loss") is { ValueKind: JsonValueKind.Number } a && a.GetDouble() > 0, m.Data.GetRawText()));
        Assert.Contains(metrics, m => m.Data.GetProperty("spatial_loss") is { ValueKind: JsonValueKind.Number } s && s.GetDouble() > 0);

        var result = (await world.Client.GetFromJsonAsync<CheckpointResponse>($"/v1/checkpoints/{job.ResultCheckpointId}"))!;
        Assert.Equal((world.Model, 2, world.BaseId), (result.Model, result.Version, result.ParentCheckpointId!.Value));
        var observation = new ObservationInput(
            FineTuningWorld.Sim.Cameras.ToDictionary(c => c.Name, c => new ImageInput("raw", new byte[c.Width * c.Height * 3], [c.Height, c.Width, 3])),
            [0.5f, 0.5f, 0f], "pick the red cube and place it in the blue bowl");
        var act = await world.Client.PostAsJsonAsync("/v1/act", new ActRequest($"{world.Model}@v2", observation, new ActOptions(Steps: 2, Seed: 1)));
        Assert.True(act.StatusCode == HttpStatusCode.OK, await act.Content.ReadAsStringAsync());
        var actions = (await act.Content.ReadFromJsonAsync<ActResponse>())!;
        Assert.Equal((16, FineTuningWorld.Sim.ActionDim), (actions.Actions.Length, actions.Actions[0].Length));
    }

    [Trait("Category", "Slow")]
    [Theory]
    [InlineData(PolicyConfig.St4VlaFamily)]
    [InlineData(PolicyConfig.InternVlaM1Family)]
    public async Task A_trainer_killed_mid_job_is_replaced_and_the_job_resumes_from_its_saved_step_with_one_result(string family)
    {
        await using var app = new VlaCloudAppFactory(services, FineTuningWorld.Settings(root, trainer: false));
        var world = await FineTuningWorld.CreateAsync(app, FineTuningWorld.BaseConfig(family));
        var dataset = await ValidateWithTrainerAsync(world, "trainer-0");

        // An M1 step costs several of the tiny ST4VLA config's (two vision streams): fewer steps, the same kill after step 5.
        var steps = family == PolicyConfig.InternVlaM1Family ? 12 : 40;
        var job = await world.CreateJobAsync(dataset.Id, new { steps, batch_size = 4, learning_rate = 1e-3, warmup_steps = 2, checkpoint_interval = 5, seed = 9 });
        int killedAfter;
        using (var first = TrainerProcess.Start(services, root, "trainer-1"))
        {
            var running = await world.WaitForJobAsync(job.Id, j => j.LastSavedStep >= 5 && j.Status == "running", TimeSpan.FromMinutes(4), "no state saved");
            first.Kill();
            killedAfter = (await world.GetJobAsync(job.Id))!.LastSavedStep;
            Assert.True(killedAfter >= running.LastSavedStep);
        }
        Assert.Equal("running", (await world.GetJobAsync(job.Id))!.Status);

        using (var second = TrainerProcess.Start(services, root, "trainer-2"))
        {
            try
            {
                job = await world.WaitForJobAsync(job.Id, j => j.Status == "succeeded", TimeSpan.FromMinutes(5), "job did not finish after the restart");
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                throw new Xunit.Sdk.XunitException($"{e.Message}\n--- the second trainer's last output ---\n{second.OutputTail}");
            }
        }
        Assert.Equal(2, job.Attempts);
        Assert.Equal(killedAfter, job.ResumedFromStep);
        var events = await world.EventsAsync(job.Id);
        var resumed = Assert.Single(events, e => e.Message.StartsWith("Resuming from step", StringComparison.Ordinal));
        Assert.Equal(killedAfter, resumed.Data.GetProperty("resumed_from_step").GetInt32());
        // The second attempt trained only the steps after the saved one.
        Assert.DoesNotContain(events.SkipWhile(e => e.Id != resumed.Id), e => e.Type == "metrics" && e.Data.GetProperty("step").GetInt32() <= killedAfter);
        var results = (await world.Client.GetFromJsonAsync<ListPage<CheckpointResponse>>($"/v1/checkpoints?model={world.Model}"))!.Data
            .Where(c => c.FineTuningJobId == job.Id).ToList();
        Assert.Equal(job.ResultCheckpointId, Assert.Single(results).Id);
    }

    [Trait("Category", "Slow")]
    [Fact]
    public async Task A_new_head_job_from_a_base_of_another_layout_trains_the_base_rebuilt_for_the_dataset_and_names_the_tensors_it_started_afresh()
    {
        await using var app = new VlaCloudAppFactory(services, FineTuningWorld.Settings(root, trainer: true));
        var world = await FineTuningWorld.CreateAsync(app);
        // A base trained for a 7-action, 7-state, one-camera arm; the dataset is the simulator's (3 actions, 3 state, 2 cameras).
        var seven = $"seven-{Guid.NewGuid():N}"[..14];
        var created = await world.Client.PostAsJsonAsync("/v1/embodiments", new CreateEmbodimentRequest(
            seven, 7, 7, "joint", [new CameraDto("main", 64, 64)], 10, PolicyConfig.Tiny.ChunkLength, null));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var baseModel = $"b7-{Guid.NewGuid():N}"[..12];
        var baseCheckpoint = await FineTuningWorld.RegisterBaseAsync(world.Client, baseModel, seven, PolicyConfig.Tiny.ForLayout(new EmbodimentLayout(7, 7, 1)),
            new() { [seven] = TestPolicies.IdentityStats(7, 7) });
        var dataset = await world.CompleteDatasetAsync(await world.UploadPartsAsync(await FineTuningWorld.SimDatasetTar, 1));
        Assert.Equal("ready", dataset.Status);

        var model = $"nh-{Guid.NewGuid():N}"[..12];
        var posted = await world.Client.PostAsJsonAsync("/v1/fine_tuning/jobs", new
        {
            @base = baseCheckpoint.Id.ToString(), dataset = dataset.Id, model, new_head = true,
            hyperparameters = new { steps = 3, batch_size = 4, learning_rate = 1e-3, warmup_steps = 1, checkpoint_interval = 0, seed = 5 },
        });
        Assert.True(posted.StatusCode == HttpStatusCode.Created, await posted.Content.ReadAsStringAsync());
        var job = (await posted.Content.ReadFromJsonAsync<FineTuningJobResponse>())!;
        job = await world.WaitForJobAsync(job.Id, j => j.Status == "succeeded", TimeSpan.FromMinutes(5), "job did not succeed");

        // Action and state layers start afresh (their sizes differ), and the camera embedding (one camera slot became two).
        string[] fresh = ["expert.actionIn.bias", "expert.actionIn.weight", "expert.actionOut.bias", "expert.actionOut.weight", "expert.stateIn.bias", "expert.stateIn.weight", "vision.camera"];
        var events = await world.EventsAsync(job.Id);
        var record = Assert.Single(events, e => e.Data.ValueKind == JsonValueKind.Object && e.Data.TryGetProperty("new_head", out _));
        Assert.Contains("New action head", record.Message);
        Assert.Equal(fresh, record.Data.GetProperty("new_head").GetProperty("reinitialised").EnumerateArray().Select(n => n.GetString()!).Order(StringComparer.Ordinal));
        var result = (await world.Client.GetFromJsonAsync<CheckpointResponse>($"/v1/checkpoints/{job.ResultCheckpointId}"))!;
        Assert.Equal(baseCheckpoint.Id, result.ParentCheckpointId);
        var metrics = result.Metrics.GetProperty("new_head");
        Assert.Equal(fresh, metrics.GetProperty("reinitialised").EnumerateArray().Select(n => n.GetString()!).Order(StringComparer.Ordinal));
        Assert.True(metrics.GetProperty("copied").GetInt32() > 20);

        // The registered result acts for the simulator's embodiment: chunks of its 3 action dimensions.
        var observation = new ObservationInput(
            FineTuningWorld.Sim.Cameras.ToDictionary(c => c.Name, c => new ImageInput("raw", new byte[c.Width * c.Height * 3], [c.Height, c.Width, 3])),
            [0.5f, 0.5f, 0f], "pick the red cube and place it in the blue bowl");
        var act = await world.Client.PostAsJsonAsync("/v1/act", new ActRequest($"{model}@v1", observation, new ActOptions(Steps: 2, Seed: 1)));
        Assert.True(act.StatusCode == HttpStatusCode.OK, await act.Content.ReadAsStringAsync());
        var actions = (await act.Content.ReadFromJsonAsync<ActResponse>())!;
        Assert.Equal(result.Id, actions.Checkpoint.Id);
        Assert.Equal(PolicyConfig.Tiny.ChunkLength, actions.Actions.Length);
        Assert.All(actions.Actions, a => Assert.Equal(FineTuningWorld.Sim.ActionDim, a.Length));
    }

    [Fact]
    public async Task Cancelling_a_running_job_stops_it_within_seconds_and_registers_nothing()
    {
        await using var app = new VlaCloudAppFactory(services, FineTuningWorld.Settings(root, trainer: true));
        var world = await FineTuningWorld.CreateAsync(app);
        var dataset = await world.CompleteDatasetAsync(await world.UploadPartsAsync(await FineTuningWorld.SimDatasetTar, 1));
        var job = await world.CreateJobAsync(dataset.Id, new { steps = 100_000, batch_size = 2, checkpoint_interval = 1000 });
        await world.WaitForJobAsync(job.Id, j => j.Status == "running" && j.Step >= 1, TimeSpan.FromMinutes(3), "job did not start");

        var cancel = await world.Client.PostAsync($"/v1/fine_tuning/jobs/{job.Id}/cancel", null);
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        job = await world.WaitForJobAsync(job.Id, j => j.Status == "cancelled", TimeSpan.FromSeconds(30), "job not cancelled");
        Assert.True(job.Step < 100_000);
        Assert.Null(job.ResultCheckpointId);
        var versions = (await world.Client.GetFromJsonAsync<ListPage<CheckpointResponse>>($"/v1/checkpoints?model={world.Model}"))!.Data;
        Assert.Equal([1], versions.Select(v => v.Version));
        Assert.Equal(HttpStatusCode.Conflict, (await world.Client.PostAsync($"/v1/fine_tuning/jobs/{job.Id}/cancel", null)).StatusCode);
    }

    [Fact]
    public async Task Broken_datasets_fail_validation_with_the_file_and_the_reason()
    {
        await using var app = new VlaCloudAppFactory(services, FineTuningWorld.Settings(root, trainer: true));
        var world = await FineTuningWorld.CreateAsync(app);

        var noInfo = await FineTuningWorld.TarOfAsync(async folder =>
        {
            await VlaCloud.Sim.DatasetGenerator.GenerateAsync(folder, new VlaCloud.Sim.DatasetOptions(1, VlaCloud.Sim.SimSplits.Train, [VlaCloud.Sim.TaskKind.Push]));
            File.Delete(Path.Combine(folder, "meta", "info.json"));
        });
        var failed = await world.CompleteDatasetAsync(await world.UploadPartsAsync(noInfo, 2));
        Assert.Equal("failed", failed.Status);
        Assert.Contains(failed.Issues, i => i.File == "meta/info.json" && i.Message.Contains("not found", StringComparison.Ordinal));

        var notArchive = "this is not an archive"u8.ToArray();
        failed = await world.CompleteDatasetAsync(await world.UploadPartsAsync(notArchive, 1));
        Assert.Equal("failed", failed.Status);
        Assert.Contains(failed.Issues, i => i.Message.Contains("not a zip, tar or tar.gz", StringComparison.Ordinal));

        // The right dataset for the wrong robot: an embodiment with 4 action values.
        var arm = await world.Client.PostAsJsonAsync("/v1/embodiments", new CreateEmbodimentRequest(
            "arm4", 4, 3, "delta_eef+gripper", [new CameraDto("main", 64, 64), new CameraDto("wrist", 64, 64)], 10, 8));
        Assert.Equal(HttpStatusCode.Created, arm.StatusCode);
        failed = await world.CompleteDatasetAsync(await world.UploadPartsAsync(await FineTuningWorld.SimDatasetTar, 2, embodiment: "arm4"));
        Assert.Equal("failed", failed.Status);
        Assert.Contains(failed.Issues, i => i.Message.Contains("action", StringComparison.OrdinalIgnoreCase) && i.Message.Contains('4'));

        var refused = await world.Client.PostAsJsonAsync("/v1/fine_tuning/jobs", new { @base = $"{world.Model}@v1", dataset = failed.Id, model = world.Model });
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task A_point_guided_base_refuses_vanilla_jobs_and_datasets_without_spatial_annotations_before_anything_is_queued()
    {
        await using var app = new VlaCloudAppFactory(services, FineTuningWorld.Settings(root, trainer: true));
        var world = await FineTuningWorld.CreateAsync(app, PolicyConfig.Tiny with { PointGuidance = true });
        var annotated = await world.CompleteDatasetAsync(await world.UploadPartsAsync(await FineTuningWorld.SimDatasetTar, 1));
        var plainTar = await FineTuningWorld.TarOfAsync(async folder =>
        {
            await VlaCloud.Sim.DatasetGenerator.GenerateAsync(folder, new VlaCloud.Sim.DatasetOptions(1, VlaCloud.Sim.SimSplits.Train, [VlaCloud.Sim.TaskKind.Push]));
            File.Delete(Path.Combine(folder, LeRobotDataset.SpatialAnnotationsFile));
        });
        var plain = await world.CompleteDatasetAsync(await world.UploadPartsAsync(plainTar, 1));
        Assert.Equal(["ready", "ready"], new[] { annotated.Status, plain.Status });

        async Task<string> RefusedAsync(Guid dataset, object hyperparameters)
        {
            var response = await world.Client.PostAsJsonAsync("/v1/fine_tuning/jobs", new { @base = $"{world.Model}@production", dataset, model = world.Model, hyperparameters });
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            return await response.Content.ReadAsStringAsync();
        }
        var vanilla = await RefusedAsync(annotated.Id, new { mode = "vanilla", steps = 2 });
        Assert.Contains("hyperparameters.mode", vanilla);
        Assert.Contains($"base {world.Model}@v1 is point-guided", vanilla);
        var unlabelled = await RefusedAsync(plain.Id, new { steps = 2 });
        Assert.Contains($"dataset {plain.Id} has none", unlabelled);
        Assert.Empty((await world.Client.GetFromJsonAsync<ListPage<FineTuningJobResponse>>("/v1/fine_tuning/jobs"))!.Data);

        // st4vla on annotated demonstrations is what the base trains on.
        var job = await world.CreateJobAsync(annotated.Id, new { steps = 100_000, batch_size = 2 });
        Assert.Equal(HttpStatusCode.OK, (await world.Client.PostAsync($"/v1/fine_tuning/jobs/{job.Id}/cancel", null)).StatusCode);
        await world.WaitForJobAsync(job.Id, j => j.Status == "cancelled", TimeSpan.FromMinutes(1), "job not cancelled");
    }

    [Fact]
    public async Task Uploads_refuse_oversized_parts_wrong_sizes_and_missing_embodiments_and_keep_nothing()
    {
        await using var app = new VlaCloudAppFactory(services, FineTuningWorld.Settings(root, trainer: false)
            .Concat(new Dictionary<string, string?> { ["VlaCloud:Uploads:MaxPartBytes"] = "1024" }).ToDictionary());
        var world = await FineTuningWorld.CreateAsync(app);
        var bytes = Enumerable.Range(0, 3000).Select(i => (byte)i).ToArray();

        var created = await world.Client.PostAsJsonAsync("/v1/uploads", new CreateUploadRequest("x.tar", bytes.Length, FineTuningWorld.Sha(bytes), "dataset"));
        var upload = (await created.Content.ReadFromJsonAsync<UploadResponse>())!;
        var tooLarge = await world.PutPartAsync(upload.Id, 1, bytes[..2000]);
        Assert.Equal(HttpStatusCode.BadRequest, tooLarge.StatusCode);
        Assert.Equal("application/problem+json", tooLarge.Content.Headers.ContentType?.MediaType);
        Assert.Empty((await world.Client.GetFromJsonAsync<UploadResponse>($"/v1/uploads/{upload.Id}"))!.Parts);

        foreach (var (n, range) in new[] { (1, 0..1000), (3, 2000..3000) })
            Assert.Equal(HttpStatusCode.OK, (await world.PutPartAsync(upload.Id, n, bytes[range])).StatusCode);
        var gap = await world.Client.PostAsJsonAsync($"/v1/uploads/{upload.Id}/complete", new CompleteUploadRequest(Embodiment: "sim-tabletop"));
        Assert.Equal(HttpStatusCode.Conflict, gap.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await world.PutPartAsync(upload.Id, 2, bytes[1000..2000])).StatusCode);
        var noEmbodiment = await world.Client.PostAsJsonAsync($"/v1/uploads/{upload.Id}/complete", new CompleteUploadRequest());
        Assert.Equal(HttpStatusCode.BadRequest, noEmbodiment.StatusCode);
        Assert.Equal("pending", (await world.Client.GetFromJsonAsync<UploadResponse>($"/v1/uploads/{upload.Id}"))!.Status);

        var invalid = await world.Client.PostAsJsonAsync("/v1/uploads", new CreateUploadRequest("x.tar", -1, "abc", "weights"));
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        var body = await invalid.Content.ReadAsStringAsync();
        Assert.Contains("bytes", body);
        Assert.Contains("sha256", body);
        Assert.Contains("purpose", body);
        Assert.Empty((await world.Client.GetFromJsonAsync<ListPage<DatasetResponse>>("/v1/datasets"))!.Data);
    }

    [Fact]
    public async Task Expired_uploads_are_cleaned_with_their_parts()
    {
        await using var app = new VlaCloudAppFactory(services, FineTuningWorld.Settings(root, trainer: false)
            .Concat(new Dictionary<string, string?> { ["VlaCloud:Uploads:Lifetime"] = "00:00:01" }).ToDictionary());
        var world = await FineTuningWorld.CreateAsync(app);
        var upload = await world.UploadPartsAsync([1, 2, 3, 4], 2);
        Assert.True(Directory.Exists(Path.Combine(root, "artifacts", "uploads", upload.ToString("N"))));
        await Task.Delay(TimeSpan.FromSeconds(1.5));

        using (var scope = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.CreateScope(app.Services))
        {
            var cleanup = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<UploadCleanupJob>(scope.ServiceProvider);
            Assert.True(await cleanup.RunAsync(CancellationToken.None) >= 1);
        }
        Assert.False(Directory.Exists(Path.Combine(root, "artifacts", "uploads", upload.ToString("N"))));
        Assert.Equal("expired", (await world.Client.GetFromJsonAsync<UploadResponse>($"/v1/uploads/{upload}"))!.Status);
        Assert.Equal(HttpStatusCode.Conflict, (await world.PutPartAsync(upload, 1, [1])).StatusCode);
    }

    [Fact]
    public async Task A_tenant_cannot_see_or_use_another_tenants_upload_dataset_or_job()
    {
        await using var app = new VlaCloudAppFactory(services, FineTuningWorld.Settings(root, trainer: true));
        var a = await FineTuningWorld.CreateAsync(app);
        var b = await FineTuningWorld.CreateAsync(app);
        var upload = await a.UploadPartsAsync(await FineTuningWorld.SimDatasetTar, 1);
        Assert.Equal(HttpStatusCode.NotFound, (await b.PutPartAsync(upload, 1, [1, 2])).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await b.Client.PostAsJsonAsync($"/v1/uploads/{upload}/complete", new CompleteUploadRequest())).StatusCode);
        var dataset = await a.CompleteDatasetAsync(upload);

        Assert.Equal(HttpStatusCode.NotFound, (await b.Client.GetAsync($"/v1/datasets/{dataset.Id}")).StatusCode);
        Assert.Empty((await b.Client.GetFromJsonAsync<ListPage<DatasetResponse>>("/v1/datasets"))!.Data);
        var stolen = await b.Client.PostAsJsonAsync("/v1/fine_tuning/jobs", new { @base = $"{b.Model}@v1", dataset = dataset.Id, model = b.Model });
        Assert.Equal(HttpStatusCode.NotFound, stolen.StatusCode);

        var job = await a.CreateJobAsync(dataset.Id, new { steps = 100_000, batch_size = 2 });
        foreach (var path in new[] { "", "/events", "/checkpoints", "/loss_curve", "/events/stream" })
            Assert.Equal(HttpStatusCode.NotFound, (await b.Client.GetAsync($"/v1/fine_tuning/jobs/{job.Id}{path}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await b.Client.PostAsync($"/v1/fine_tuning/jobs/{job.Id}/cancel", null)).StatusCode);
        Assert.Empty((await b.Client.GetFromJsonAsync<ListPage<FineTuningJobResponse>>("/v1/fine_tuning/jobs"))!.Data);

        Assert.Equal(HttpStatusCode.OK, (await a.Client.PostAsync($"/v1/fine_tuning/jobs/{job.Id}/cancel", null)).StatusCode);
        await a.WaitForJobAsync(job.Id, j => j.Status == "cancelled", TimeSpan.FromMinutes(1), "job not cancelled");
    }

    /// <summary>Validates the sim dataset with a short-lived trainer process (the API host of this test runs no jobs).</summary>
    private async Task<DatasetResponse> ValidateWithTrainerAsync(FineTuningWorld world, string name)
    {
        var upload = await world.UploadPartsAsync(await FineTuningWorld.SimDatasetTar, 2);
        using var trainer = TrainerProcess.Start(services, root, name);
        var dataset = await world.CompleteDatasetAsync(upload);
        Assert.Equal("ready", dataset.Status);
        return dataset;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>
/// A second host process: the built VlaCloud.Api.dll run with <c>dotnet</c> in the trainer role on the same
/// database, Redis prefix and artifact folder, with a work folder of its own (as a separate pod would have).
/// </summary>
public sealed class TrainerProcess : IDisposable
{
    private readonly Process process;

    private TrainerProcess(Process process) => this.process = process;

    /// <summary>The process's id.</summary>
    public int ProcessId => process.Id;

    /// <summary>Where it serves HTTP (an API process started by <see cref="StartApiAsync"/>).</summary>
    public string Url { get; private set; } = "";

    /// <summary>
    /// An API process (role <c>api</c>: no Hangfire server) on a free loopback port, on the same database, Redis and
    /// artifact folder, once it answers <c>/readyz</c>.
    /// </summary>
    public static async Task<TrainerProcess> StartApiAsync(ServicesFixture services, string root, string name)
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var url = $"http://127.0.0.1:{((System.Net.IPEndPoint)listener.LocalEndpoint).Port}";
        listener.Stop();
        var api = Start(services, root, name, new Dictionary<string, string?> { ["VlaCloud:Roles"] = "api", ["ASPNETCORE_URLS"] = url });
        api.Url = url;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (true)
        {
            if (api.process.HasExited) throw new InvalidOperationException($"{name} exited with {api.process.ExitCode}:\n{api.OutputTail}");
            try
            {
                if ((await http.GetAsync($"{url}/readyz")).StatusCode == HttpStatusCode.OK) return api;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }
            if (DateTime.UtcNow > deadline) throw new InvalidOperationException($"{name} was not ready within 3 minutes:\n{api.OutputTail}");
            await Task.Delay(250);
        }
    }

    public static TrainerProcess Start(ServicesFixture services, string root, string name, IReadOnlyDictionary<string, string?>? extra = null)
    {
        var dll = Path.Combine(RepositoryRoot.Path, "src", "VlaCloud.Api", "bin", "Release", "net10.0", "VlaCloud.Api.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing; build the solution in Release first");
        var start = new ProcessStartInfo("dotnet", [dll])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        var settings = FineTuningWorld.Settings(root, trainer: true);
        settings["VlaCloud:Roles"] = "trainer";
        settings["VlaCloud:FineTuning:WorkPath"] = Path.Combine(root, $"work-{name}");
        settings["VlaCloud:MigrateOnStart"] = "false";
        settings["VlaCloud:SeedDemo"] = "false";
        settings["VlaCloud:RedisPrefix"] = services.RedisPrefix;
        settings["ConnectionStrings:Registry"] = services.PostgresConnectionString;
        settings["ConnectionStrings:Redis"] = services.RedisConnectionString;
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>()) settings[key] = value;
        start.Environment["ASPNETCORE_URLS"] = "http://127.0.0.1:0";
        foreach (var (key, value) in settings) start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Testing";
        var process = Process.Start(start)!;
        var trainer = new TrainerProcess(process);
        // Drain the output so the child never blocks on a full pipe, keeping its tail for failure messages.
        process.OutputDataReceived += (_, e) => trainer.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => trainer.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return trainer;
    }

    private readonly System.Collections.Concurrent.ConcurrentQueue<string> tail = new();

    /// <summary>The last lines the process wrote (stdout and stderr interleaved).</summary>
    public string OutputTail => string.Join('\n', tail);

    private volatile bool serving;

    /// <summary>Whether the process's Hangfire server started (it takes jobs from then on).</summary>
    public bool Serving => serving;

    private void Keep(string? line)
    {
        if (line is null) return;
        if (line.Contains("Hangfire server started", StringComparison.Ordinal)) serving = true;
        tail.Enqueue(line);
        while (tail.Count > 60) tail.TryDequeue(out _);
    }

    /// <summary>Kills the process at once, as a crashed pod.</summary>
    public void Kill()
    {
        process.Kill(entireProcessTree: true);
        process.WaitForExit();
    }

    /// <summary>Stops the process as Kubernetes stops a pod: SIGTERM, then a kill if it has not exited after a grace period.</summary>
    public void Dispose()
    {
        if (!process.HasExited)
        {
            using (var term = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) term.WaitForExit();
            if (!process.WaitForExit(TimeSpan.FromSeconds(30))) Kill();
        }
        process.Dispose();
    }
}
