using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using VlaCloud.Api.Tests.Registry;
using VlaCloud.Registry.Entities;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Hardening;

/// <summary>
/// Issue 18, item 3: tenant B registered a checkpoint naming A's queued job (201, and A's job later failed) or A's
/// dataset (201); unknown ids were a 500, an existence oracle.
/// </summary>
[Collection(HardeningCollection.Name)]
public sealed class LineageTests(ServicesFixture services)
{
    [Fact]
    public async Task Lineage_ids_of_another_tenant_unknown_or_empty_are_404_and_a_job_id_is_the_jobs_to_register()
    {
        await using var app = new VlaCloudAppFactory(services);
        var a = await RegistryClient.CreateWorldAsync(app);
        var b = await RegistryClient.CreateWorldAsync(app);
        var (datasetA, jobA) = await DatasetAndQueuedJobAsync(app, a);
        var (datasetB, jobB) = await DatasetAndQueuedJobAsync(app, b);
        var before = await app.WithDbAsync(db => db.Checkpoints.IgnoreQueryFilters().CountAsync(c => c.TenantId == b.TenantId));

        var probes = new (string Field, Guid Id)[]
        {
            ("dataset_id", datasetA), ("fine_tuning_job_id", jobA), ("parent_checkpoint_id", a.V1.Id),
            ("dataset_id", Guid.NewGuid()), ("fine_tuning_job_id", Guid.NewGuid()), ("parent_checkpoint_id", Guid.NewGuid()),
            ("dataset_id", Guid.Empty), ("fine_tuning_job_id", Guid.Empty), ("parent_checkpoint_id", Guid.Empty),
        };
        foreach (var (field, id) in probes)
        {
            var response = await RegisterAsync(b, field, id);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{field}={id}: {(int)response.StatusCode} {body}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }

        // B's own job registers its own result; a client naming it is told so.
        var own = await RegisterAsync(b, "fine_tuning_job_id", jobB);
        Assert.Equal(HttpStatusCode.Conflict, own.StatusCode);
        Assert.Contains("registers its own result", await own.Content.ReadAsStringAsync());
        // B's own dataset is fine lineage.
        Assert.Equal(HttpStatusCode.Created, (await RegisterAsync(b, "dataset_id", datasetB)).StatusCode);

        Assert.Equal(before + 1, await app.WithDbAsync(db => db.Checkpoints.IgnoreQueryFilters().CountAsync(c => c.TenantId == b.TenantId)));
        var job = await app.WithDbAsync(db => db.FineTuningJobs.IgnoreQueryFilters().SingleAsync(j => j.Id == jobA));
        Assert.Equal((FineTuningJobStatus.Queued, (Guid?)null), (job.Status, job.ResultCheckpointId));
        Assert.False(await app.WithDbAsync(db => db.Checkpoints.IgnoreQueryFilters().AnyAsync(c => c.FineTuningJobId == jobA || c.DatasetId == datasetA)));
    }

    private static Task<HttpResponseMessage> RegisterAsync(TenantWorld world, string field, Guid id) =>
        world.Client.PostAsJsonAsync("/v1/checkpoints", new Dictionary<string, object?>
        {
            ["model"] = world.Model,
            ["embodiment"] = world.Embodiment.Name,
            ["artifact_sha256"] = world.Artifact.Sha256,
            ["config"] = new { preset = "tiny" },
            ["normalization_stats"] = RegistryClient.MicroStatsJson,
            [field] = id,
        });

    /// <summary>A ready dataset and a queued job of the world's tenant (no trainer runs in this test).</summary>
    internal static Task<(Guid Dataset, Guid Job)> DatasetAndQueuedJobAsync(VlaCloudAppFactory app, TenantWorld world) =>
        app.WithDbAsync(async db =>
        {
            var dataset = new Dataset
            {
                TenantId = world.TenantId, Name = "d.tar", EmbodimentId = world.Embodiment.Id, ArtifactSha256 = world.Artifact.Sha256, Status = DatasetStatus.Ready,
            };
            var job = new FineTuningJob
            {
                TenantId = world.TenantId, Model = world.Model, BaseCheckpointId = world.V1.Id, DatasetId = dataset.Id, EmbodimentId = world.Embodiment.Id,
                Hyperparameters = "{}", TotalSteps = 1,
            };
            db.AddRange(dataset, job);
            await db.SaveChangesAsync();
            return (dataset.Id, job.Id);
        });
}
