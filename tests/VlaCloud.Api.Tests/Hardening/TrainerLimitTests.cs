using System.Net;
using System.Net.Http.Json;
using Hangfire;
using Hangfire.States;
using Microsoft.Extensions.DependencyInjection;
using VlaCloud.Api.Tests.FineTuning;
using VlaCloud.Api.Tests.Registry;
using VlaCloud.Registry.Entities;
using VlaCloud.Testing;
using VlaCloud.Training.Jobs;

namespace VlaCloud.Api.Tests.Hardening;

/// <summary>
/// Issue 18, item 6: a trainer OOM-killed by one job re-ran it forever (no cap on attempts) and blocked the finetune
/// queue for every tenant; there was no per-tenant limit on queued jobs.
/// </summary>
[Collection(HardeningCollection.Name)]
public sealed class TrainerLimitTests(ServicesFixture services) : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("vlacloud-limits-").FullName;

    private static readonly object LongRun = new { steps = 100_000, batch_size = 2, checkpoint_interval = 100_000 };

    [Fact]
    public async Task A_job_whose_runs_all_died_is_failed_with_the_reason_and_the_trainer_moves_on_to_the_next_tenants_job()
    {
        await using var app = new VlaCloudAppFactory(services, FineTuningWorld.Settings(root, trainer: true));
        var a = await FineTuningWorld.CreateAsync(app);
        var b = await FineTuningWorld.CreateAsync(app);
        var tar = await FineTuningWorld.SimDatasetTar;
        var datasetA = await a.CompleteDatasetAsync(await a.UploadPartsAsync(tar, 1));
        var datasetB = await b.CompleteDatasetAsync(await b.UploadPartsAsync(tar, 1));

        // A's job as three trainers killed under it (out of memory) leave it: running, three runs started, none finished.
        var tenantA = (await SessionClient.KeyOfAsync(app, a.Key)).TenantId!.Value;
        var doomed = await app.WithDbAsync(async db =>
        {
            var job = new FineTuningJob
            {
                TenantId = tenantA, Model = a.Model, BaseCheckpointId = a.BaseId, DatasetId = datasetA.Id, EmbodimentId = datasetA.EmbodimentId,
                Hyperparameters = FineTuningJobSpec.Resolve(new RequestedTrainingOptions(), out _).ToJson(), TotalSteps = 100,
                Status = FineTuningJobStatus.Running, Attempts = 3, StartedAt = DateTimeOffset.UtcNow,
            };
            db.FineTuningJobs.Add(job);
            await db.SaveChangesAsync();
            return job;
        });
        doomed.BackgroundJobId = app.Services.GetRequiredService<IBackgroundJobClient>()
            .Create<FineTuneJob>(run => run.RunAsync(doomed.Id, CancellationToken.None), new EnqueuedState(HangfireSetup.FineTuneQueue));
        var next = await b.CreateJobAsync(datasetB.Id, LongRun);

        var failed = await a.WaitForJobAsync(doomed.Id, j => j.Status == "failed", TimeSpan.FromMinutes(2), "the job ran again");
        Assert.Contains("started 3 times", failed.Error);
        Assert.Equal(3, failed.Attempts);
        Assert.Contains(await a.EventsAsync(doomed.Id), e => e.Level == "error" && e.Message.Contains("not run again", StringComparison.Ordinal));

        await b.WaitForJobAsync(next.Id, j => j.Status == "running" && j.Step >= 1, TimeSpan.FromMinutes(3), "the next job did not run");
        Assert.Equal(HttpStatusCode.OK, (await b.Client.PostAsync($"/v1/fine_tuning/jobs/{next.Id}/cancel", null)).StatusCode);
        await b.WaitForJobAsync(next.Id, j => j.Status == "cancelled", TimeSpan.FromMinutes(1), "job not cancelled");
    }

    [Fact]
    public async Task A_tenant_at_its_running_limit_waits_its_turn_while_another_tenants_job_runs()
    {
        var settings = FineTuningWorld.Settings(root, trainer: true);
        settings["VlaCloud:TrainerWorkers"] = "2";
        settings["VlaCloud:FineTuning:MaxRunningJobsPerTenant"] = "1";
        settings["VlaCloud:FineTuning:DeferDelay"] = "00:00:01";
        settings["VlaCloud:Jobs:SchedulePollingInterval"] = "00:00:01";
        await using var app = new VlaCloudAppFactory(services, settings);
        var a = await FineTuningWorld.CreateAsync(app);
        var b = await FineTuningWorld.CreateAsync(app);
        var tar = await FineTuningWorld.SimDatasetTar;
        var datasetA = await a.CompleteDatasetAsync(await a.UploadPartsAsync(tar, 1));
        var datasetB = await b.CompleteDatasetAsync(await b.UploadPartsAsync(tar, 1));

        var first = await a.CreateJobAsync(datasetA.Id, LongRun);
        await a.WaitForJobAsync(first.Id, j => j.Status == "running", TimeSpan.FromMinutes(3), "first job did not start");
        var second = await a.CreateJobAsync(datasetA.Id, LongRun);
        await Eventually.TrueAsync(async () => (await a.EventsAsync(second.Id)).Any(e => e.Message.StartsWith("Waiting for a running job", StringComparison.Ordinal)),
            TimeSpan.FromMinutes(1), "the second job was not put back");
        var other = await b.CreateJobAsync(datasetB.Id, LongRun);
        await b.WaitForJobAsync(other.Id, j => j.Status == "running", TimeSpan.FromMinutes(2), "the other tenant's job did not start");
        Assert.Equal(("queued", 0), ((await a.GetJobAsync(second.Id))!.Status, (await a.GetJobAsync(second.Id))!.Attempts));

        Assert.Equal(HttpStatusCode.OK, (await a.Client.PostAsync($"/v1/fine_tuning/jobs/{first.Id}/cancel", null)).StatusCode);
        await a.WaitForJobAsync(second.Id, j => j.Status == "running", TimeSpan.FromMinutes(2), "the second job did not start after the first ended");

        foreach (var (world, job) in new[] { (a, second.Id), (b, other.Id) })
        {
            Assert.Equal(HttpStatusCode.OK, (await world.Client.PostAsync($"/v1/fine_tuning/jobs/{job}/cancel", null)).StatusCode);
            await world.WaitForJobAsync(job, j => j.Status == "cancelled", TimeSpan.FromMinutes(1), "job not cancelled");
        }
    }

    [Fact]
    public async Task A_tenant_with_its_limit_of_queued_and_running_jobs_gets_429_for_another()
    {
        await using var app = new VlaCloudAppFactory(services, new Dictionary<string, string?> { ["VlaCloud:Limits:MaxActiveJobsPerTenant"] = "2" });
        var a = await RegistryClient.CreateWorldAsync(app);
        var b = await RegistryClient.CreateWorldAsync(app);
        var (datasetA, _) = await LineageTests.DatasetAndQueuedJobAsync(app, a);
        var (datasetB, _) = await LineageTests.DatasetAndQueuedJobAsync(app, b);

        Assert.Equal(HttpStatusCode.Created, (await CreateJobAsync(a, datasetA)).StatusCode);
        var refused = await CreateJobAsync(a, datasetA);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.Contains("2 jobs queued or running", await refused.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Created, (await CreateJobAsync(b, datasetB)).StatusCode);
    }

    private static Task<HttpResponseMessage> CreateJobAsync(TenantWorld world, Guid dataset) =>
        world.Client.PostAsJsonAsync("/v1/fine_tuning/jobs", new { @base = world.V1.Id.ToString(), dataset, model = world.Model, hyperparameters = new { steps = 2 } });

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
