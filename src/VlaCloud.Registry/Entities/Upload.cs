namespace VlaCloud.Registry.Entities;

/// <summary>Lifecycle of an <see cref="Upload"/>.</summary>
public static class UploadStatus
{
    /// <summary>Accepting parts.</summary>
    public const string Pending = "pending";
    /// <summary>Assembled, verified and stored as an artifact.</summary>
    public const string Completed = "completed";
    /// <summary>Cancelled by the client; its parts are deleted.</summary>
    public const string Cancelled = "cancelled";
    /// <summary>Not completed in time; its parts are deleted.</summary>
    public const string Expired = "expired";
}

/// <summary>
/// A file sent in parts (OpenAI's Uploads shape): created with its size and SHA-256, filled with parts in any
/// order, then completed, which assembles and verifies it and stores it as an <see cref="Artifact"/>. Part bytes
/// live on disk, not in Postgres; only their sizes are recorded here.
/// </summary>
public sealed class Upload : ITenantOwned
{
    /// <summary>Stable identifier.</summary>
    public Guid Id { get; set; } = Guid.CreateVersion7();

    /// <summary>Owning tenant.</summary>
    public Guid? TenantId { get; set; }

    /// <summary>The client's file name.</summary>
    public required string Filename { get; set; }

    /// <summary>Declared total size in bytes.</summary>
    public long Bytes { get; set; }

    /// <summary>Declared SHA-256, lower-case hex.</summary>
    public required string Sha256 { get; set; }

    /// <summary><c>dataset</c>, <c>checkpoint</c> or <c>checkpoint_import</c> (a released run's bundle for <c>POST /v1/checkpoints/imports</c>).</summary>
    public required string Purpose { get; set; }

    /// <summary>The client's MIME type, informational.</summary>
    public string? MimeType { get; set; }

    /// <summary>For datasets: the embodiment (id or name) given at creation, if any.</summary>
    public string? Embodiment { get; set; }

    /// <summary>See <see cref="UploadStatus"/>.</summary>
    public string Status { get; set; } = UploadStatus.Pending;

    /// <summary>The artifact it became, once completed.</summary>
    public string? ArtifactSha256 { get; set; }

    /// <summary>The dataset it became (purpose <c>dataset</c>), once completed.</summary>
    public Guid? DatasetId { get; set; }

    /// <summary>The key that created it.</summary>
    public Guid? CreatedByKeyId { get; set; }

    /// <summary>When it was created (UTC).</summary>
    public DateTimeOffset CreatedAt { get; set; } = DateTimeOffset.UtcNow;

    /// <summary>When it expires unless completed (UTC).</summary>
    public DateTimeOffset ExpiresAt { get; set; }

    /// <summary>When it was completed (UTC).</summary>
    public DateTimeOffset? CompletedAt { get; set; }

    /// <summary>Its parts.</summary>
    public List<UploadPart> Parts { get; set; } = [];

    /// <summary>Postgres <c>xmin</c>: two completions of one upload cannot both win.</summary>
    public uint RowVersion { get; set; }
}

/// <summary>One received part of an <see cref="Upload"/>; a retried part replaces the row and the bytes.</summary>
public sealed class UploadPart
{
    /// <summary>The upload.</summary>
    public Guid UploadId { get; set; }

    /// <summary>Part number from 1; parts are assembled in this order.</summary>
    public int PartNumber { get; set; }

    /// <summary>Size in bytes.</summary>
    public long SizeBytes { get; set; }

    /// <summary>SHA-256 of the part, lower-case hex.</summary>
    public required string Sha256 { get; set; }

    /// <summary>When it was (last) received (UTC).</summary>
    public DateTimeOffset ReceivedAt { get; set; } = DateTimeOffset.UtcNow;
}
