namespace VlaCloud.Registry.Entities;

/// <summary>
/// An API key of a tenant, or of the platform's administrators (no tenant). The secret is never stored: only its
/// SHA-256 hash and a short public prefix used to find the row without scanning.
/// </summary>
public sealed class ApiKey
{
    /// <summary>Stable identifier.</summary>
    public Guid Id { get; set; } = Guid.CreateVersion7();

    /// <summary>The owning tenant; null for a platform administrator's key (the only kind that holds <see cref="ApiScopes.Admin"/>).</summary>
    public Guid? TenantId { get; set; }

    /// <summary>The owning tenant (navigation).</summary>
    public Tenant? Tenant { get; set; }

    /// <summary>A label chosen by the admin who created the key.</summary>
    public required string Name { get; set; }

    /// <summary>Public lookup prefix, the part of the key before its secret (unique).</summary>
    public required string Prefix { get; set; }

    /// <summary>SHA-256 of the whole key string.</summary>
    public required byte[] Hash { get; set; }

    /// <summary>Granted scopes, see <see cref="ApiScopes"/>.</summary>
    public required string[] Scopes { get; set; }

    /// <summary>When the key was created (UTC).</summary>
    public DateTimeOffset CreatedAt { get; set; } = DateTimeOffset.UtcNow;

    /// <summary>After this instant the key is refused; null means it does not expire.</summary>
    public DateTimeOffset? ExpiresAt { get; set; }

    /// <summary>When the key was revoked; a revoked key is refused at once.</summary>
    public DateTimeOffset? RevokedAt { get; set; }

    /// <summary>Postgres <c>xmin</c>, so a revocation and another edit cannot overwrite each other.</summary>
    public uint RowVersion { get; set; }

    /// <summary>Whether the key may be used at <paramref name="now"/>.</summary>
    public bool IsActiveAt(DateTimeOffset now) => RevokedAt is null && (ExpiresAt is null || ExpiresAt > now);
}
