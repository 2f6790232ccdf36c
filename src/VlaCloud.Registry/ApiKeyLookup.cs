using Microsoft.EntityFrameworkCore;

namespace VlaCloud.Registry;

/// <summary>What an authenticated API key grants.</summary>
/// <param name="KeyId">The key's id.</param>
/// <param name="TenantId">The tenant it acts for; null for a platform administrator's key.</param>
/// <param name="Prefix">The key's public lookup prefix.</param>
/// <param name="Scopes">Granted scopes.</param>
/// <param name="ExpiresAt">When it stops working, if ever.</param>
/// <param name="Limits">The tenant's own limits (null fields take the deployment defaults).</param>
public sealed record ApiKeyIdentity(Guid KeyId, Guid? TenantId, string Prefix, IReadOnlyList<string> Scopes, DateTimeOffset? ExpiresAt, TenantLimitOverrides Limits)
{
    /// <summary>Whether this is a platform administrator's key (it belongs to no tenant).</summary>
    public bool IsPlatformAdmin => TenantId is null;
}

/// <summary>A tenant's limit settings as stored; null means the deployment default.</summary>
/// <param name="RequestsPerSecond">Request rate.</param>
/// <param name="Burst">Burst above the rate.</param>
/// <param name="MaxConcurrentStreams">Streams at once.</param>
/// <param name="MonthlyComputeMsQuota">Compute milliseconds per month.</param>
/// <param name="StorageQuotaBytes">Bytes of artifacts, datasets and pending uploads.</param>
/// <param name="InferenceWeight">
/// The tenant's weight in the inference engine's fair sharing (always stored; 1 unless the administrator set another).
/// It travels with the cached key identity, so the hot path reads it from memory and a change reaches every replica
/// through the same invalidation as the limits.
/// </param>
public sealed record TenantLimitOverrides(double? RequestsPerSecond, int? Burst, int? MaxConcurrentStreams, long? MonthlyComputeMsQuota, long? StorageQuotaBytes = null,
    double InferenceWeight = Entities.Tenant.DefaultInferenceWeight)
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
        if (key.Tenant is not { } tenant) return new ApiKeyIdentity(key.Id, null, key.Prefix, [ApiScopes.Admin], key.ExpiresAt, TenantLimitOverrides.None);
        // A tenant's key never acts as the platform administrator, whatever a row written before the roles were
        // separated (or by hand) says.
        return new ApiKeyIdentity(key.Id, key.TenantId, key.Prefix, [.. key.Scopes.Where(s => s != ApiScopes.Admin)], key.ExpiresAt,
            new TenantLimitOverrides(tenant.RequestsPerSecond, tenant.Burst, tenant.MaxConcurrentStreams, tenant.MonthlyComputeMsQuota, tenant.StorageQuotaBytes,
                tenant.InferenceWeight));
    }

    /// <summary>Those of <paramref name="keyIds"/> that are still active at <paramref name="now"/> (one query).</summary>
    public async Task<IReadOnlySet<Guid>> ActiveAmongAsync(IReadOnlyCollection<Guid> keyIds, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (keyIds.Count == 0) return new HashSet<Guid>();
        var active = await db.ApiKeys.AsNoTracking()
            .Where(k => keyIds.Contains(k.Id) && k.RevokedAt == null && (k.ExpiresAt == null || k.ExpiresAt > now))
            .Select(k => k.Id)
            .ToListAsync(cancellationToken);
        return active.ToHashSet();
    }
}
