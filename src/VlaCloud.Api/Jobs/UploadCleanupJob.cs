using Microsoft.EntityFrameworkCore;
using VlaCloud.Registry;
using VlaCloud.Registry.Entities;
using VlaCloud.Registry.Uploads;

namespace VlaCloud.Api;

/// <summary>
/// Expires uploads that were not completed in time and deletes their parts, plus any part folder whose upload
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
        if (Directory.Exists(parts.Root))
        {
            var folders = Directory.EnumerateDirectories(parts.Root)
                .Select(d => Guid.TryParseExact(Path.GetFileName(d), "N", out var id) ? id : (Guid?)null).OfType<Guid>().ToList();
            var pending = (await db.Uploads.IgnoreQueryFilters().Where(u => folders.Contains(u.Id) && u.Status == UploadStatus.Pending)
                .Select(u => u.Id).ToListAsync(cancellationToken)).ToHashSet();
            foreach (var id in folders.Where(id => !pending.Contains(id)))
            {
                try
                {
                    parts.Delete(id);
                }
                catch (IOException e)
                {
                    logger.LogWarning(e, "Could not delete the parts of upload {UploadId}", id);
                }
            }
        }
        if (expired > 0) logger.LogInformation("Expired {Count} incomplete upload(s)", expired);
        return expired;
    }
}
