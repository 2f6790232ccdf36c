using Microsoft.EntityFrameworkCore;
using VlaCloud.Policy;
using VlaCloud.Registry;
using VlaCloud.Registry.Artifacts;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Training.Jobs;

/// <summary>What the job classes share of the artifact store: loading a checkpoint's policy, recording an uploaded artifact.</summary>
internal static class JobArtifacts
{
    /// <summary>Loads <paramref name="checkpoint"/>'s policy from the artifact store onto <paramref name="device"/>.</summary>
    public static async Task<VlaPolicy> LoadPolicyAsync(IArtifactStore store, Checkpoint checkpoint, string device, CancellationToken cancellationToken)
    {
        var file = Path.Combine(Path.GetTempPath(), $"vlacloud-base-{Guid.NewGuid():N}.tar");
        try
        {
            await using (var source = await store.OpenReadAsync(checkpoint.Sha256, cancellationToken))
            await using (var target = File.Create(file))
                await source.CopyToAsync(target, cancellationToken);
            return VlaPolicy.Load(file, device);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>
    /// Records the uploaded <paramref name="info"/> as an artifact of <paramref name="kind"/> for the tenant, in a context of
    /// its own (the uploader runs beside the job's scoped context).
    /// </summary>
    public static async Task RecordAsync(DbContextOptions<RegistryDbContext> dbOptions, Guid? tenantId, ArtifactInfo info, string kind, TimeProvider clock)
    {
        await using var context = new RegistryDbContext(dbOptions, new FixedTenantAccessor(tenantId));
        await context.RecordArtifactAsync(tenantId, info, kind, clock.GetUtcNow(), CancellationToken.None);
    }
}
