using VlaCloud.Registry.Entities;

namespace VlaCloud.Registry;

/// <summary>Creates API keys. The plain key is returned once and never stored.</summary>
public sealed class ApiKeyIssuer(RegistryDbContext db, TimeProvider clock)
{
    /// <summary>Creates and saves a key for <paramref name="tenantId"/>.</summary>
    /// <exception cref="ArgumentException">A scope is unknown, none is given, or one is <see cref="ApiScopes.Admin"/>.</exception>
    public Task<(ApiKey Entity, string PlainKey)> IssueAsync(
        Guid tenantId, string name, IReadOnlyCollection<string> scopes, DateTimeOffset? expiresAt, CancellationToken cancellationToken)
    {
        if (scopes.Count == 0) throw new ArgumentException("At least one scope is required.", nameof(scopes));
        if (scopes.FirstOrDefault(s => !ApiScopes.IsKnown(s)) is { } unknown)
            throw new ArgumentException($"Unknown scope '{unknown}'. Known scopes: {string.Join(", ", ApiScopes.Tenant)}.", nameof(scopes));
        if (scopes.Contains(ApiScopes.Admin, StringComparer.Ordinal))
            throw new ArgumentException(
                $"The '{ApiScopes.Admin}' scope belongs to platform administrators' keys, never to a tenant's; a tenant key may hold {string.Join(", ", ApiScopes.Tenant)}.",
                nameof(scopes));
        return SaveAsync(tenantId, name, scopes, expiresAt, cancellationToken);
    }

    /// <summary>Creates and saves a platform administrator's key: no tenant, the <see cref="ApiScopes.Admin"/> scope only.</summary>
    public Task<(ApiKey Entity, string PlainKey)> IssuePlatformAdminAsync(string name, DateTimeOffset? expiresAt, CancellationToken cancellationToken) =>
        SaveAsync(null, name, [ApiScopes.Admin], expiresAt, cancellationToken);

    private async Task<(ApiKey Entity, string PlainKey)> SaveAsync(
        Guid? tenantId, string name, IReadOnlyCollection<string> scopes, DateTimeOffset? expiresAt, CancellationToken cancellationToken)
    {
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
