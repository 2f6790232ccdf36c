using VlaCloud.Registry.Entities;

namespace VlaCloud.Registry;

/// <summary>Creates API keys. The plain key is returned once and never stored.</summary>
public sealed class ApiKeyIssuer(RegistryDbContext db, TimeProvider clock)
{
    /// <summary>Creates and saves a key for <paramref name="tenantId"/>.</summary>
    /// <exception cref="ArgumentException">A scope is unknown or none is given.</exception>
    public async Task<(ApiKey Entity, string PlainKey)> IssueAsync(
        Guid tenantId, string name, IReadOnlyCollection<string> scopes, DateTimeOffset? expiresAt, CancellationToken cancellationToken)
    {
        if (scopes.Count == 0) throw new ArgumentException("At least one scope is required.", nameof(scopes));
        if (scopes.FirstOrDefault(s => !ApiScopes.IsKnown(s)) is { } unknown)
            throw new ArgumentException($"Unknown scope '{unknown}'. Known scopes: {string.Join(", ", ApiScopes.All)}.", nameof(scopes));

        var (plain, prefix) = ApiKeyFormat.Generate();
        var entity = new ApiKey
        {
            TenantId = tenantId,
            Name = name,
            Prefix = prefix,
            Hash = ApiKeyFormat.Hash(plain),
            Scopes = scopes.Distinct(StringComparer.Ordinal).ToArray(),
            CreatedAt = clock.GetUtcNow(),
            ExpiresAt = expiresAt,
        };
        db.ApiKeys.Add(entity);
        await db.SaveChangesAsync(cancellationToken);
        return (entity, plain);
    }
}
