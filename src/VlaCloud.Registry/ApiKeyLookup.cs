using Microsoft.EntityFrameworkCore;

namespace VlaCloud.Registry;

/// <summary>What an authenticated API key grants.</summary>
/// <param name="KeyId">The key's id.</param>
/// <param name="TenantId">The tenant it acts for.</param>
/// <param name="Scopes">Granted scopes.</param>
public sealed record ApiKeyIdentity(Guid KeyId, Guid TenantId, IReadOnlyList<string> Scopes);

/// <summary>Finds the active key that matches a presented key string.</summary>
public sealed class ApiKeyLookup(RegistryDbContext db)
{
    /// <summary>The identity of <paramref name="presented"/>, or null when it is malformed, unknown, expired or revoked.</summary>
    public async Task<ApiKeyIdentity?> FindActiveAsync(string presented, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (ApiKeyFormat.TryGetPrefix(presented) is not { } prefix) return null;
        var key = await db.ApiKeys.AsNoTracking().SingleOrDefaultAsync(k => k.Prefix == prefix, cancellationToken);
        return key is not null && key.IsActiveAt(now) && ApiKeyFormat.Matches(presented, key.Hash)
            ? new ApiKeyIdentity(key.Id, key.TenantId, key.Scopes)
            : null;
    }
}
