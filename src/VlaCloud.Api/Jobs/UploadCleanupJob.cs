using Microsoft.EntityFrameworkCore;
using VlaCloud.Registry;
using VlaCloud.Registry.Entities;
using VlaCloud.Registry.Uploads;

namespace VlaCloud.Api;

/// <summary>
/// Expires uploads that were not completed in time and deletes their parts, plus the parts (in the artifact store) of any upload that
/// is no longer pending (a part that arrived while its upload completed). A recurring job over every tenant.
/// </summary>
public sealed class UploadCleanupJob(RegistryDbContext db, UploadPartStore parts, TimeProvider clock, ILogger<UploadCleanupJob> logger)
{
    /// <summary>Runs one cleanup pass; returns the number of uploads expired.</summary>
    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow();
        var expired = await db.Uploads.IgnoreQueryFilters()
            .Where(u => u.Status == UploadStatus.Pending && u.ExpiresAt <= now)
            .ExecuteUpdateAsync(s => s.SetProperty(u => u.Status, UploadStatus.Expired), cancellationToken);
        // The parts live in the artifact store, shared by every replica, so whichever process runs this pass sees them all.
        var stored = new List<Guid>();
        await foreach (var id in parts.ListUploadsAsync(cancellationToken)) stored.Add(id);
        var pending = new HashSet<Guid>();
        foreach (var chunk in stored.Chunk(1000))
            pending.UnionWith(await db.Uploads.IgnoreQueryFilters().Where(u => chunk.Contains(u.Id) && u.Status == UploadStatus.Pending)
                .Select(u => u.Id).ToListAsync(cancellationToken));
        foreach (var id in stored.Where(id => !pending.Contains(id)))
        {
            try
            {
                await parts.DeleteAsync(id, cancellationToken);
            }
            catch (Exception e) when (e is IOException or Amazon.S3.AmazonS3Exception)
            {
                logger.LogWarning(e, "Could not delete the parts of upload {UploadId}", id);
            }
        }
        if (expired > 0) logger.LogInformation("Expired {Count} incomplete upload(s)", expired);
        return expired;
    }
}
