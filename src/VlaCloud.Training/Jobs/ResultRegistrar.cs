using Microsoft.EntityFrameworkCore;
using VlaCloud.Policy;
using VlaCloud.Registry;
using VlaCloud.Registry.Artifacts;
using VlaCloud.Registry.Checkpoints;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Training.Jobs;

/// <summary>Registers a fine-tuning job's trained policy as its result checkpoint.</summary>
internal sealed class ResultRegistrar(
    RegistryDbContext db, DbContextOptions<RegistryDbContext> dbOptions, CheckpointRegistry registry, IArtifactStore store, TimeProvider clock)
{
    /// <summary>
    /// Uploads <paramref name="policy"/> and registers it as the job's result (the model's next version with lineage). Exactly
    /// once per job: when another run of the job registered first, that run's checkpoint is returned.
    /// </summary>
    public async Task<Checkpoint> RegisterAsync(FineTuningJob job, Embodiment embodiment, VlaPolicy policy, string metrics, string work)
    {
        var tar = Path.Combine(work, "result.tar");
        await using (var file = File.Create(tar)) policy.SaveTar(file);
        ArtifactInfo info;
        await using (var file = File.OpenRead(tar)) info = await store.PutAsync(file, CancellationToken.None);
        await JobArtifacts.RecordAsync(dbOptions, job.TenantId, info, "checkpoint", clock);
        try
        {
            return await registry.RegisterJobResultAsync(new CheckpointRegistration(
                embodiment.Id.ToString(), job.Model, info.Sha256, policy.Config.ToJson(), NormalizationStats.ToJson(policy.Normalization), metrics,
                job.BaseCheckpointId, job.DatasetId, job.Id, job.CreatedByKeyId), CancellationToken.None);
        }
        catch (DbUpdateException e) when (e.IsUniqueViolation())
        {
            // Another run of the same job registered first (the unique index on fine_tuning_job_id): that one is the result.
            db.ChangeTracker.Clear();
            return await db.Checkpoints.AsNoTracking().SingleAsync(c => c.FineTuningJobId == job.Id);
        }
    }
}
