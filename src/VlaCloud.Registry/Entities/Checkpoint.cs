namespace VlaCloud.Registry.Entities;

/// <summary>
/// A registered model version: an artifact plus what is needed to serve it. Immutable once saved
/// (the context refuses updates and a database trigger backs that up); new weights are a new version.
/// </summary>
public sealed class Checkpoint : ITenantOwned
{
    /// <summary>Stable identifier.</summary>
    public Guid Id { get; set; } = Guid.CreateVersion7();

    /// <summary>Owning tenant; null for a public base checkpoint every tenant may serve.</summary>
    public Guid? TenantId { get; set; }

    /// <summary>The embodiment it drives.</summary>
    public Guid EmbodimentId { get; set; }

    /// <summary>The embodiment (navigation).</summary>
    public Embodiment? Embodiment { get; set; }

    /// <summary>Model name, e.g. <c>st4vla-tiny</c>; versions count per (tenant, embodiment, model name).</summary>
    public required string ModelName { get; set; }

    /// <summary>Version within (tenant, embodiment, model name), from 1, without gaps.</summary>
    public int Version { get; set; }

    /// <summary>Where the artifact lives (the store's URI).</summary>
    public required string ArtifactUri { get; set; }

    /// <summary>SHA-256 of the artifact, lower-case hex.</summary>
    public required string Sha256 { get; set; }

    /// <summary>Artifact size in bytes.</summary>
    public long SizeBytes { get; set; }

    /// <summary>The model configuration (JSON object).</summary>
    public required string Config { get; set; }

    /// <summary>Per-embodiment normalisation statistics (JSON object).</summary>
    public required string NormalizationStats { get; set; }

    /// <summary>Evaluation or training metrics (JSON object).</summary>
    public string? Metrics { get; set; }

    /// <summary>The checkpoint it was fine-tuned from.</summary>
    public Guid? ParentCheckpointId { get; set; }

    /// <summary>The dataset it was trained on (foreign key added with the datasets table).</summary>
    public Guid? DatasetId { get; set; }

    /// <summary>The fine-tuning job that produced it (foreign key added with the jobs table).</summary>
    public Guid? FineTuningJobId { get; set; }

    /// <summary>The API key that registered it, when a request did.</summary>
    public Guid? CreatedByKeyId { get; set; }

    /// <summary>When it was registered (UTC).</summary>
    public DateTimeOffset CreatedAt { get; set; } = DateTimeOffset.UtcNow;
}
