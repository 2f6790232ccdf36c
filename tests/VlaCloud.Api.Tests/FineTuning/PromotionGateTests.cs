using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using VlaCloud.Api.Apis;
using VlaCloud.Policy;
using VlaCloud.Sim;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.FineTuning;

/// <summary>
/// The promotion gate: each job's evaluation episode count (bounded, 50 by default, shown in the job and its events), and
/// promotions decided by closed-loop success on the same episodes for the result and the alias holder, saying so.
/// </summary>
[Collection(FineTuningCollection.Name)]
public sealed class PromotionGateTests(ServicesFixture services) : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("vlacloud-gate-").FullName;

    [Fact]
    public async Task Evaluation_episodes_outside_1_to_1000_is_a_400_naming_the_field_and_the_job_shows_its_count_50_by_default()
    {
        await using var app = new VlaCloudAppFactory(services, FineTuningWorld.Settings(root, trainer: true));
        var world = await FineTuningWorld.CreateAsync(app);
        var dataset = await world.CompleteDatasetAsync(await world.UploadPartsAsync(await FineTuningWorld.SimDatasetTar, 1));

        foreach (var episodes in new[] { 0, -3, 1001 })
        {
            var refused = await world.Client.PostAsJsonAsync("/v1/fine_tuning/jobs", new
            {
                @base = $"{world.Model}@production", dataset = dataset.Id, model = world.Model, evaluate = true, evaluation_episodes = episodes,
            });
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            var problem = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement;
            Assert.Contains("between 1 and 1000", problem.GetProperty("errors").GetProperty("evaluation_episodes")[0].GetString());
        }
        Assert.Empty((await world.Client.GetFromJsonAsync<ListPage<FineTuningJobResponse>>("/v1/fine_tuning/jobs"))!.Data);

        var byDefault = await world.CreateJobAsync(dataset.Id, new { steps = 100_000, batch_size = 2 }, evaluate: true);
        var chosen = await world.CreateJobAsync(dataset.Id, new { steps = 100_000, batch_size = 2 }, evaluate: true, evaluationEpisodes: 1000);
        Assert.Equal((50, 1000), (byDefault.EvaluationEpisodes, chosen.EvaluationEpisodes));
        var stored = JsonDocument.Parse(await world.Client.GetStringAsync($"/v1/fine_tuning/jobs/{byDefault.Id}")).RootElement;
        Assert.Equal(50, stored.GetProperty("evaluation_episodes").GetInt32());
        Assert.Equal(1000, (await world.GetJobAsync(chosen.Id))!.EvaluationEpisodes);

        foreach (var job in new[] { byDefault, chosen })
        {
            Assert.Equal(HttpStatusCode.OK, (await world.Client.PostAsync($"/v1/fine_tuning/jobs/{job.Id}/cancel", null)).StatusCode);
            await world.WaitForJobAsync(job.Id, j => j.Status == "cancelled", TimeSpan.FromMinutes(1), "job not cancelled");
        }
    }

    [Trait("Category", "Slow")]
    [Fact]
    public async Task A_result_that_fails_where_the_holder_succeeds_is_not_promoted_and_the_event_and_the_job_say_success_decided()
    {
        await using var app = new VlaCloudAppFactory(services, FineTuningWorld.Settings(root, trainer: true));
        // v1: an untrained tiny policy, which never finishes a task; production: the shipped demo policy (v2), which does
        // (2 of the first 4 seen episodes at the test's 2 denoising steps).
        var world = await FineTuningWorld.CreateAsync(app);
        using var demo = LoadDemo(root);
        var v2 = await world.RegisterAsync(demo);
        Assert.Equal(HttpStatusCode.OK, (await world.Client.PutAsJsonAsync($"/v1/models/{world.Model}/aliases/production", new SetAliasRequest(v2.Id.ToString()))).StatusCode);
        var dataset = await world.CompleteDatasetAsync(await world.UploadPartsAsync(await FineTuningWorld.SimDatasetTar, 1));

        const int episodes = 4;
        var job = await world.CreateJobAsync(dataset.Id, new { steps = 2, batch_size = 2, warmup_steps = 0, checkpoint_interval = 0 },
            evaluate: true, promoteTo: "production", evaluationEpisodes: episodes, from: $"{world.Model}@v1");
        job = await world.WaitForJobAsync(job.Id, j => j.Status == "succeeded", TimeSpan.FromMinutes(5), "job did not succeed");

        Assert.Equal(episodes, job.EvaluationEpisodes);
        Assert.False(job.Promoted);
        var promotion = job.Evaluation.GetProperty("promotion");
        Assert.True(promotion.GetProperty("decided_by").GetString() == "success", promotion.ToString());
        var (candidate, incumbent) = (promotion.GetProperty("candidate_value").GetDouble(), promotion.GetProperty("incumbent_value").GetDouble());
        Assert.True(incumbent > candidate, $"success {candidate} vs {incumbent}");
        Assert.False(promotion.GetProperty("promoted").GetBoolean());
        Assert.Equal(episodes, promotion.GetProperty("evaluation_episodes").GetInt32());
        Assert.Equal(v2.Id, promotion.GetProperty("incumbent_checkpoint_id").GetGuid());
        Assert.Equal(candidate, job.Evaluation.GetProperty("evaluation").GetProperty("success_rate").GetDouble());
        var alias = (await world.Client.GetFromJsonAsync<AliasResponse>($"/v1/models/{world.Model}/aliases/production"))!;
        Assert.Equal(v2.Id, alias.CheckpointId);

        var events = await world.EventsAsync(job.Id);
        var starting = Assert.Single(events, e => e.Message.StartsWith("Evaluating the result", StringComparison.Ordinal));
        Assert.Contains($"{episodes} simulator episodes", starting.Message);
        Assert.Equal(episodes, starting.Data.GetProperty("evaluation_episodes").GetInt32());
        var evaluated = Assert.Single(events, e => e.Message.StartsWith("Evaluation:", StringComparison.Ordinal));
        Assert.Equal(episodes, evaluated.Data.GetProperty("episodes").GetInt32());
        var decided = Assert.Single(events, e => e.Data.ValueKind == JsonValueKind.Object && e.Data.TryGetProperty("decided_by", out _));
        Assert.Contains("decided by success", decided.Message);
        Assert.Equal("success", decided.Data.GetProperty("decided_by").GetString());
        Assert.False(decided.Data.GetProperty("promoted").GetBoolean());
        // Both ran the same episodes.
        Assert.Equal(episodes, decided.Data.GetProperty("result").GetProperty("episodes").GetInt32());
        Assert.Equal(episodes, decided.Data.GetProperty("holder").GetProperty("episodes").GetInt32());
        Assert.Equal(incumbent, decided.Data.GetProperty("holder").GetProperty("success_rate").GetDouble());
    }

    private static VlaPolicy LoadDemo(string folder)
    {
        var tar = Path.Combine(folder, "demo.tar");
        using (var file = File.Create(tar)) DemoCheckpoint.Open()!.CopyTo(file);
        return VlaPolicy.Load(tar);
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
