using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using VlaCloud.Api.Apis;
using VlaCloud.Api.Tests.Registry;
using VlaCloud.Registry.Entities;
using VlaCloud.Testing;
using VlaCloud.Training.Jobs;

namespace VlaCloud.Api.Tests.FineTuning;

[Collection(RegistryCollection.Name)]
public sealed class MetricsTests(ServicesFixture services)
{
    /// <summary>
    /// A job's events as the trainer writes them: 40 steps with a saved state at 20, an interruption, a resume from 20
    /// that repeats steps 21–25 with other values, and an evaluation at the end.
    /// </summary>
    private static async Task<(TenantWorld World, Guid JobId)> JobWithEventsAsync(VlaCloudAppFactory app)
    {
        var a = await RegistryClient.CreateWorldAsync(app);
        var jobId = await app.WithDbAsync(async db =>
        {
            var dataset = new Dataset { TenantId = a.TenantId, Name = "d.tar", EmbodimentId = a.Embodiment.Id, ArtifactSha256 = a.Artifact.Sha256, Status = DatasetStatus.Ready };
            var job = new FineTuningJob
            {
                TenantId = a.TenantId, Model = a.Model, BaseCheckpointId = a.V1.Id, DatasetId = dataset.Id, EmbodimentId = a.Embodiment.Id,
                Hyperparameters = "{}", TotalSteps = 40,
            };
            db.AddRange(dataset, job);
            JobEvent Event(string type, string message, object data) => new()
            {
                JobId = job.Id, TenantId = a.TenantId, Level = "info", Type = type, Message = message, Data = JsonSerializer.Serialize(data), CreatedAt = DateTimeOffset.UtcNow,
            };
            object Step(int s, double loss) => new
            {
                step = s, total_steps = 40, loss, action_loss = loss * 0.9, spatial_loss = s % 2 == 0 ? loss * 0.1 : (double?)null,
                learning_rate = 1e-4 * s / 40, vlm_learning_rate = 1e-5, gradient_norm = 0.5,
            };
            for (var s = 1; s <= 25; s++) db.JobEvents.Add(Event("metrics", $"Step {s}/40", Step(s, 1.0 / s)));
            db.JobEvents.Add(Event("message", $"{JobMetrics.SavedPrefix} at step 20.", new { step = 20, sha256 = new string('b', 64) }));
            db.JobEvents.Add(Event("message", "Resuming from step 20.", new { resumed_from_step = 20 }));
            for (var s = 21; s <= 40; s++) db.JobEvents.Add(Event("metrics", $"Step {s}/40", Step(s, 2.0 / s)));
            db.JobEvents.Add(Event("message", $"{JobMetrics.EvaluationPrefix} success rate 75%, action MSE 0.01.", new { success_rate = 0.75, action_mse = 0.01 }));
            await db.SaveChangesAsync();
            return job.Id;
        });
        return (a, jobId);
    }

    [Fact]
    public async Task The_metrics_route_returns_each_step_once_with_losses_learning_rate_saves_resumes_and_evaluations()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (a, jobId) = await JobWithEventsAsync(app);

        var metrics = await a.Client.GetFromJsonAsync<JobMetricsResponse>($"/v1/fine_tuning/jobs/{jobId}/metrics");

        Assert.Equal(Enumerable.Range(1, 40), metrics!.Steps.Select(s => s.Step));
        Assert.Equal(40, metrics.TotalSteps);
        // The resumed attempt's values of steps 21-25 replace the first attempt's.
        Assert.Equal(2.0 / 21, metrics.Steps[20].Loss, 12);
        Assert.Equal(1.0 / 20, metrics.Steps[19].Loss, 12);
        Assert.Equal(1e-4 * 30 / 40, metrics.Steps[29].LearningRate!.Value, 12);
        Assert.Null(metrics.Steps[0].SpatialLoss);
        Assert.Equal([20], metrics.SavedSteps);
        Assert.Equal([20], metrics.ResumedFromSteps);
        var evaluation = Assert.Single(metrics.Evaluations);
        Assert.Equal((40, 0.75), (evaluation.Step, evaluation.Metrics["success_rate"]));
    }

    [Fact]
    public async Task Accept_text_csv_returns_one_row_per_step_with_the_marks_and_evaluation_columns()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (a, jobId) = await JobWithEventsAsync(app);
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/fine_tuning/jobs/{jobId}/metrics");
        request.Headers.Accept.ParseAdd("text/csv");

        var response = await a.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/csv", response.Content.Headers.ContentType!.MediaType);
        var lines = (await response.Content.ReadAsStringAsync()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("step,loss,action_loss,spatial_loss,learning_rate,vlm_learning_rate,gradient_norm,saved,resumed_from,eval_action_mse,eval_success_rate", lines[0]);
        Assert.Equal(41, lines.Length);
        var row20 = lines[20].Split(',');
        Assert.Equal(("20", "1", "20"), (row20[0], row20[7], row20[8]));
        Assert.Equal(1.0 / 20, double.Parse(row20[1], System.Globalization.CultureInfo.InvariantCulture), 12);
        Assert.Equal("", lines[1].Split(',')[3]);
        Assert.Equal(["0.01", "0.75"], lines[40].Split(',')[^2..]);
    }

    [Fact]
    public async Task The_loss_curve_draws_smoothed_and_faint_raw_losses_a_learning_rate_line_and_marks_from_the_metrics()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (a, jobId) = await JobWithEventsAsync(app);

        var svg = await a.Client.GetStringAsync($"/v1/fine_tuning/jobs/{jobId}/loss_curve?smoothing=0.6");

        Assert.Equal(3, CountOf(svg, "class=\"raw\""));
        Assert.Equal(3, CountOf(svg, "class=\"smoothed\""));
        Assert.Contains("stroke-opacity=\"0.25\"", svg);
        Assert.Equal(1, CountOf(svg, "class=\"learning-rate\""));
        Assert.Equal(1, CountOf(svg, "class=\"mark-resume\""));
        Assert.Equal(1, CountOf(svg, "class=\"mark-save\""));
        Assert.Equal(1, CountOf(svg, "class=\"mark-evaluation\""));
        Assert.Contains("smoothing 0.6", svg);
        Assert.NotNull(System.Xml.Linq.XDocument.Parse(svg).Root);

        var raw = await a.Client.GetStringAsync($"/v1/fine_tuning/jobs/{jobId}/loss_curve?smoothing=0");
        Assert.Equal(0, CountOf(raw, "class=\"raw\""));
        var invalid = await a.Client.GetAsync($"/v1/fine_tuning/jobs/{jobId}/loss_curve?smoothing=1");
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        Assert.Contains("smoothing", await invalid.Content.ReadAsStringAsync());
    }

    [Fact]
    public void Smoothing_is_a_debiased_moving_average_that_keeps_the_first_value_and_follows_a_step_change()
    {
        double?[] values = [10, 10, 10, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5];

        var smoothed = JobMetrics.Smooth(values, 0.5);

        Assert.Equal(10, smoothed[0]!.Value, 9);
        Assert.InRange(smoothed[3]!.Value, 4, 6);
        Assert.InRange(smoothed[^1]!.Value, 0.5, 0.6);
        Assert.Equal(values, JobMetrics.Smooth(values, 0));
    }

    private static int CountOf(string text, string part) => (text.Length - text.Replace(part, "").Length) / part.Length;
}
