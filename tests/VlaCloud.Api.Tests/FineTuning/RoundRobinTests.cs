using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.FineTuning;

/// <summary>The finetune queue takes tenants in turn, not first-in-first-out (issue 22).</summary>
[Collection(FineTuningCollection.Name)]
public sealed class RoundRobinTests(ServicesFixture services) : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("vlacloud-rr-").FullName;

    [Fact]
    public async Task A_tenant_that_queued_first_does_not_run_its_second_job_before_another_tenants_first()
    {
        var settings = FineTuningWorld.Settings(root, trainer: true);
        settings["VlaCloud:TrainerWorkers"] = "1";
        settings["VlaCloud:FineTuning:MaxRunningJobsPerTenant"] = "2";
        settings["VlaCloud:FineTuning:RoundRobinDelay"] = "00:00:01";
        settings["VlaCloud:Jobs:SchedulePollingInterval"] = "00:00:01";
        await using var app = new VlaCloudAppFactory(services, settings);
        var a = await FineTuningWorld.CreateAsync(app);
        var b = await FineTuningWorld.CreateAsync(app);
        var tar = await FineTuningWorld.SimDatasetTar;
        var datasetA = await a.CompleteDatasetAsync(await a.UploadPartsAsync(tar, 1));
        var datasetB = await b.CompleteDatasetAsync(await b.UploadPartsAsync(tar, 1));

        var first = await a.CreateJobAsync(datasetA.Id, new { steps = 40, batch_size = 2, checkpoint_interval = 1000 });
        await a.WaitForJobAsync(first.Id, j => j.Status == "running", TimeSpan.FromMinutes(3), "the first job did not start");
        // Queued in this order behind the running job: A's second, then B's first. One trainer worker takes them one at a time.
        var second = await a.CreateJobAsync(datasetA.Id, new { steps = 2, batch_size = 2, checkpoint_interval = 1000 });
        var other = await b.CreateJobAsync(datasetB.Id, new { steps = 2, batch_size = 2, checkpoint_interval = 1000 });

        second = await a.WaitForJobAsync(second.Id, j => j.Status == "succeeded", TimeSpan.FromMinutes(5), "A's second job did not finish");
        other = await b.WaitForJobAsync(other.Id, j => j.Status == "succeeded", TimeSpan.FromMinutes(5), "B's job did not finish");
        Assert.True(other.StartedAt < second.StartedAt, $"B's job started at {other.StartedAt:O}, A's second at {second.StartedAt:O}");
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
