using Microsoft.EntityFrameworkCore;
using VlaCloud.Registry;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Api.Limits;

/// <summary>A tenant's storage against its quota.</summary>
/// <param name="UsedBytes">Its artifacts (checkpoints, datasets, training states, files put) plus the declared size of its pending uploads.</param>
/// <param name="QuotaBytes">Its quota.</param>
public sealed record StorageUsage(long UsedBytes, long QuotaBytes)
{
    /// <summary>What is left.</summary>
    public long RemainingBytes => Math.Max(0, QuotaBytes - UsedBytes);

    /// <summary>Whether <paramref name="bytes"/> more still fit.</summary>
    public bool Fits(long bytes) => bytes <= RemainingBytes;
}

/// <summary>
/// Counts what a tenant stores: every artifact row it owns (a blob shared with other tenants counts for each, as each
/// could have put it alone) and the bytes its pending uploads announced, which are reserved until they complete or
/// expire.
/// </summary>
public sealed class StorageQuota(RegistryDbContext db)
{
    /// <summary>The tenant's usage and quota under <paramref name="limits"/>.</summary>
    public async Task<StorageUsage> GetAsync(Guid tenantId, TenantLimits limits, CancellationToken cancellationToken)
    {
        var artifacts = await db.Artifacts.IgnoreQueryFilters().Where(a => a.TenantId == tenantId).SumAsync(a => a.SizeBytes, cancellationToken);
        var pending = await db.Uploads.IgnoreQueryFilters().Where(u => u.TenantId == tenantId && u.Status == UploadStatus.Pending)
            .SumAsync(u => u.Bytes, cancellationToken);
        return new StorageUsage(artifacts + pending, limits.StorageQuotaBytes);
    }
}
