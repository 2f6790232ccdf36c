namespace VlaCloud.Registry.Entities;

/// <summary>Lifecycle of a <see cref="Dataset"/>.</summary>
public static class DatasetStatus
{
    /// <summary>Stored; its validation job has not finished.</summary>
    public const string Validating = "validating";
    /// <summary>Valid for its embodiment; jobs may train on it.</summary>
    public const string Ready = "ready";
    /// <summary>Invalid; <see cref="Dataset.Issues"/> says why, per file.</summary>
    public const string Failed = "failed";
}

/// <summary>A tenant's LeRobot dataset archive (an artifact) for one embodiment, with its validation outcome.</summary>
public sealed class Dataset : ITenantOwned
{
    /// <summary>Stable identifier.</summary>
    public Guid Id { get; set; } = Guid.CreateVersion7();

    /// <summary>Owning tenant.</summary>
    public Guid? TenantId { get; set; }

    /// <summary>Name (the uploaded file's name).</summary>
    public required string Name { get; set; }

    /// <summary>The embodiment it must fit.</summary>
    public Guid EmbodimentId { get; set; }

    /// <summary>The upload it came from.</summary>
    public Guid? UploadId { get; set; }

    /// <summary>SHA-256 of the archive in the artifact store.</summary>
    public required string ArtifactSha256 { get; set; }

    /// <summary>Archive size in bytes.</summary>
    public long SizeBytes { get; set; }

    /// <summary>See <see cref="DatasetStatus"/>.</summary>
    public string Status { get; set; } = DatasetStatus.Validating;

    /// <summary>JSON array of <c>{file, message}</c>: every problem found (empty when ready).</summary>
    public string Issues { get; set; } = "[]";

    /// <summary>JSON object: normalisation statistics and counts, when ready.</summary>
    public string? Statistics { get; set; }

    /// <summary>LeRobot codebase version, when the metadata could be read.</summary>
    public string? Format { get; set; }

    /// <summary>Episodes, when known.</summary>
    public int? Episodes { get; set; }

    /// <summary>Frames, when known.</summary>
    public int? Frames { get; set; }

    /// <summary>When it was created (UTC).</summary>
    public DateTimeOffset CreatedAt { get; set; } = DateTimeOffset.UtcNow;

    /// <summary>When validation finished (UTC).</summary>
    public DateTimeOffset? ValidatedAt { get; set; }
}
