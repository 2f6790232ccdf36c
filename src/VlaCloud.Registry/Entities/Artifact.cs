namespace VlaCloud.Registry.Entities;

/// <summary>
/// A tenant's claim on a stored blob. Blobs are content-addressed and shared by the store, but a tenant
/// can register only artifacts it put itself (or that a public row owns), so a hash alone grants nothing.
/// Uploads of any kind (a direct put, a multipart upload) end as one of these rows.
/// </summary>
public sealed class Artifact : ITenantOwned
{
    /// <summary>Stable identifier.</summary>
    public Guid Id { get; set; } = Guid.CreateVersion7();

    /// <summary>The tenant that put it; null for a public artifact.</summary>
    public Guid? TenantId { get; set; }

    /// <summary>SHA-256, lower-case hex.</summary>
    public required string Sha256 { get; set; }

    /// <summary>Size in bytes.</summary>
    public long SizeBytes { get; set; }

    /// <summary>The store's URI of the blob.</summary>
    public required string Uri { get; set; }

    /// <summary>What the artifact is, e.g. <c>checkpoint</c>.</summary>
    public required string Kind { get; set; }

    /// <summary>When it was first put (UTC).</summary>
    public DateTimeOffset CreatedAt { get; set; } = DateTimeOffset.UtcNow;
}
