using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace VlaCloud.Registry.Artifacts;

/// <summary>What one garbage collection removed.</summary>
/// <param name="Rows">Artifact rows no checkpoint, dataset, saved training state, job or unfinished import referenced.</param>
/// <param name="Blobs">Blobs no artifact row named any more.</param>
/// <param name="Bytes">Bytes of those blobs.</param>
public sealed record ArtifactCollection(int Rows, int Blobs, long Bytes);

/// <summary>
/// Garbage-collects artifacts. A tenant's artifact row is a claim on a blob; it is referenced while one of the tenant's
/// checkpoints, datasets, saved training states or jobs (their resume state) names its hash. Claims older than
/// <see cref="ArtifactStoreOptions.UnreferencedGracePeriod"/> that nothing references (a file put and never
/// registered) are dropped, which also gives their bytes back to the tenant's storage quota; then every blob older than
/// the grace period that no claim of any tenant (or public row) names is deleted from the store.
/// </summary>
/// <remarks>
/// Blobs are judged by their own age too, because a put writes the blob before its row: a blob written within the grace
/// period may be waiting for its row. (An S3 put of bytes already stored does not rewrite them, so there a re-put of
/// an old unreferenced blob in the instant between this check and the delete can lose it; the filesystem store always
/// rewrites.)
/// </remarks>
public sealed class ArtifactCollector(RegistryDbContext db, IArtifactStore store, IOptions<ArtifactStoreOptions> options, TimeProvider clock, ILogger<ArtifactCollector> logger)
{
    /// <summary>Runs one collection over every tenant.</summary>
    public async Task<ArtifactCollection> CollectAsync(CancellationToken cancellationToken)
    {
        var cutoff = clock.GetUtcNow() - options.Value.UnreferencedGracePeriod;
        var rows = await db.Database.ExecuteSqlAsync($"""
            DELETE FROM artifacts a
            WHERE a.tenant_id IS NOT NULL AND a.created_at < {cutoff}
              AND NOT EXISTS (SELECT 1 FROM checkpoints c WHERE c.tenant_id = a.tenant_id AND c.sha256 = a.sha256)
              AND NOT EXISTS (SELECT 1 FROM datasets d WHERE d.tenant_id = a.tenant_id AND d.artifact_sha256 = a.sha256)
              AND NOT EXISTS (SELECT 1 FROM job_checkpoints s WHERE s.tenant_id = a.tenant_id AND s.artifact_sha256 = a.sha256)
              AND NOT EXISTS (SELECT 1 FROM fine_tuning_jobs j WHERE j.tenant_id = a.tenant_id AND j.resume_artifact_sha256 = a.sha256)
              AND NOT EXISTS (SELECT 1 FROM checkpoint_imports i WHERE i.tenant_id = a.tenant_id AND i.artifact_sha256 = a.sha256
                              AND i.status IN ('queued', 'running'))
            """, cancellationToken);

        var named = (await db.Artifacts.IgnoreQueryFilters().Select(a => a.Sha256).Distinct().ToListAsync(cancellationToken)).ToHashSet(StringComparer.Ordinal);
        int blobs = 0;
        long bytes = 0;
        await foreach (var blob in store.ListAsync(cancellationToken))
        {
            if (named.Contains(blob.Sha256) || blob.LastModified >= cutoff) continue;
            // Named since the list above was read (a put of the same bytes in the meantime): keep it.
            if (await db.Artifacts.IgnoreQueryFilters().AnyAsync(a => a.Sha256 == blob.Sha256, cancellationToken)) continue;
            await store.DeleteAsync(blob.Sha256, cancellationToken);
            blobs++;
            bytes += blob.SizeBytes;
        }
        if (rows > 0 || blobs > 0)
            logger.LogInformation("Artifact collection dropped {Rows} unreferenced artifact row(s) and deleted {Blobs} blob(s), {Bytes} bytes", rows, blobs, bytes);
        return new ArtifactCollection(rows, blobs, bytes);
    }
}
