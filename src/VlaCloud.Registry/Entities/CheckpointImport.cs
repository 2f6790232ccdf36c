namespace VlaCloud.Registry.Entities;

/// <summary>Lifecycle of a <see cref="CheckpointImport"/>.</summary>
public static class CheckpointImportStatus
{
    /// <summary>Waiting for a trainer.</summary>
    public const string Queued = "queued";
    /// <summary>A trainer is converting it.</summary>
    public const string Running = "running";
    /// <summary>Converted and registered; <see cref="CheckpointImport.CheckpointId"/> is the result.</summary>
    public const string Succeeded = "succeeded";
    /// <summary>Refused; <see cref="CheckpointImport.Error"/> says which file or tensor.</summary>
    public const string Failed = "failed";

    /// <summary>Whether <paramref name="status"/> is final.</summary>
    public static bool IsFinal(string status) => status is Succeeded or Failed;
}

/// <summary>
/// A released InternVLA-M1 run (an uploaded bundle: the run folder plus Qwen's <c>config.json</c> and
/// <c>tokenizer.json</c>) being converted to a checkpoint by a background job and registered as the next version of
/// <see cref="Model"/> for <see cref="EmbodimentId"/>.
/// </summary>
public sealed class CheckpointImport : ITenantOwned
{
    /// <summary>Stable identifier.</summary>
    public Guid Id { get; set; } = Guid.CreateVersion7();

    /// <summary>Owning tenant.</summary>
    public Guid? TenantId { get; set; }

    /// <summary>The model the result becomes the next version of.</summary>
    public required string Model { get; set; }

    /// <summary>The embodiment it is registered for.</summary>
    public Guid EmbodimentId { get; set; }

    /// <summary>JSON object: renames of <c>dataset_statistics.json</c>'s tags to embodiment names.</summary>
    public string Embodiments { get; set; } = "{}";

    /// <summary>A <c>.pt</c> file name in the bundle's <c>checkpoints/</c> to read instead of the highest step.</summary>
    public string? CheckpointFile { get; set; }

    /// <summary>The upload that carried the bundle, if one did.</summary>
    public Guid? UploadId { get; set; }

    /// <summary>SHA-256 of the bundle in the artifact store.</summary>
    public required string ArtifactSha256 { get; set; }

    /// <summary>Bundle size in bytes.</summary>
    public long SizeBytes { get; set; }

    /// <summary>See <see cref="CheckpointImportStatus"/>.</summary>
    public string Status { get; set; } = CheckpointImportStatus.Queued;

    /// <summary>Why it failed, naming the file or tensor.</summary>
    public string? Error { get; set; }

    /// <summary>The registered checkpoint, once succeeded.</summary>
    public Guid? CheckpointId { get; set; }

    /// <summary>The key that asked.</summary>
    public Guid? CreatedByKeyId { get; set; }

    /// <summary>When it was asked for (UTC).</summary>
    public DateTimeOffset CreatedAt { get; set; } = DateTimeOffset.UtcNow;

    /// <summary>When a trainer started it (UTC).</summary>
    public DateTimeOffset? StartedAt { get; set; }

    /// <summary>When it ended (UTC).</summary>
    public DateTimeOffset? FinishedAt { get; set; }
}
