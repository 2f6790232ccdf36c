using Microsoft.EntityFrameworkCore;

namespace VlaCloud.Registry;

/// <summary>What an authenticated API key grants.</summary>
/// <param name="KeyId">The key's id.</param>
/// <param name="TenantId">The tenant it acts for.</param>
/// <param name="Scopes">Granted scopes.</param>
/// <param name="ExpiresAt">When it stops working, if ever.</param>
/// <param name="Limits">The tenant's own limits (null fields take the deployment defaults).</param>
public sealed record ApiKeyIdentity(Guid KeyId, Guid TenantId, IReadOnlyList<string> Scopes, DateTimeOffset? ExpiresAt, TenantLimitOverrides Limits);

/// <summary>A tenant's limit settings as stored; null means the deployment default.</summary>
/// <param name="RequestsPerSecond">Request rate.</param>
/// <param name="Burst">Burst above the rate.</param>
/// <param name="MaxConcurrentStreams">Streams at once.</param>
/// <param name="MonthlyComputeMsQuota">Compute milliseconds per month.</param>
public sealed record TenantLimitOverrides(double? RequestsPerSecond, int? Burst, int? MaxConcurrentStreams, long? MonthlyComputeMsQuota)
{
    /// <summary>No overrides.</summary>
    public static TenantLimitOverrides None { get; } = new(null, null, null, null);
}

/// <summary>Finds the active key that matches a presented key string, in the database.</summary>
public sealed class ApiKeyLookup(RegistryDbContext db)
{
    /// <summary>The identity of <paramref name="presented"/>, or null when it is malformed, unknown, expired or revoked.</summary>
    public async Task<ApiKeyIdentity?> FindActiveAsync(string presented, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (ApiKeyFormat.TryGetPrefix(presented) is not { } prefix) return null;
        var key = await db.ApiKeys.AsNoTracking().Include(k => k.Tenant).SingleOrDefaultAsync(k => k.Prefix == prefix, cancellationToken);
        if (key is null || !key.IsActiveAt(now) || !ApiKeyFormat.Matches(presented, key.Hash)) return null;
        var tenant = key.Tenant!;
        return new ApiKeyIdentity(key.Id, key.TenantId, key.Scopes, key.ExpiresAt,
            new TenantLimitOverrides(tenant.RequestsPerSecond, tenant.Burst, tenant.MaxConcurrentStreams, tenant.MonthlyComputeMsQuota));
    }
}
