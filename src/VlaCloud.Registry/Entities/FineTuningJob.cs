namespace VlaCloud.Registry.Entities;

/// <summary>Lifecycle of a <see cref="FineTuningJob"/>.</summary>
public static class FineTuningJobStatus
{
    /// <summary>Waiting for a trainer.</summary>
    public const string Queued = "queued";
    /// <summary>A trainer is on it (or died on it and another will resume it).</summary>
    public const string Running = "running";
    /// <summary>Done; the result checkpoint is registered.</summary>
    public const string Succeeded = "succeeded";
    /// <summary>Stopped by an error; <see cref="FineTuningJob.Error"/> says which.</summary>
    public const string Failed = "failed";
    /// <summary>Stopped on request; nothing was registered.</summary>
    public const string Cancelled = "cancelled";

    /// <summary>Whether <paramref name="status"/> is final.</summary>
    public static bool IsFinal(string status) => status is Succeeded or Failed or Cancelled;
}

/// <summary>
/// A fine-tuning run: a base checkpoint trained on a dataset into the next version of a model. Its state is
/// written only with targeted updates (the runner and the cancel endpoint touch different columns).
/// </summary>
public sealed class FineTuningJob : ITenantOwned
{
    /// <summary>Stable identifier.</summary>
    public Guid Id { get; set; } = Guid.CreateVersion7();

    /// <summary>Owning tenant.</summary>
    public Guid? TenantId { get; set; }

    /// <summary>Name of the result model (its versions are counted per tenant and embodiment).</summary>
    public required string Model { get; set; }

    /// <summary>The checkpoint training starts from.</summary>
    public Guid BaseCheckpointId { get; set; }

    /// <summary>The dataset trained on.</summary>
    public Guid DatasetId { get; set; }

    /// <summary>The embodiment (the dataset's).</summary>
    public Guid EmbodimentId { get; set; }

    /// <summary>Hyperparameters as given, with defaults filled in (JSON object).</summary>
    public required string Hyperparameters { get; set; }

    /// <summary>Evaluate the result in the built-in simulator (sim embodiments only).</summary>
    public bool Evaluate { get; set; }

    /// <summary>Alias to move to the result when it beats the alias's current holder.</summary>
    public string? PromoteTo { get; set; }

    /// <summary>
    /// Simulator episodes each closed-loop evaluation runs (the result's, and the alias holder's when promoting, on the
    /// same seeds). Null on jobs created before jobs carried it: those run the trainer's configured count.
    /// </summary>
    public int? EvaluationEpisodes { get; set; }

    /// <summary>See <see cref="FineTuningJobStatus"/>.</summary>
    public string Status { get; set; } = FineTuningJobStatus.Queued;

    /// <summary>Steps done.</summary>
    public int Step { get; set; }

    /// <summary>Steps of the whole run.</summary>
    public int TotalSteps { get; set; }

    /// <summary>Latest training metrics (JSON object).</summary>
    public string Metrics { get; set; } = "{}";

    /// <summary>Evaluation results (<c>train</c>, <c>evaluation</c>) and the promotion decision (<c>promotion</c>) as a JSON object, when done.</summary>
    public string? Evaluation { get; set; }

    /// <summary>Why it failed.</summary>
    public string? Error { get; set; }

    /// <summary>Step of the last training state saved to the artifact store (0: none); a retry resumes here.</summary>
    public int LastSavedStep { get; set; }

    /// <summary>The saved step the latest attempt resumed from; null when no attempt resumed (the job ran from its base).</summary>
    public int? ResumedFromStep { get; set; }

    /// <summary>SHA-256 of that training state (weights + optimizer + step, a tar) in the artifact store.</summary>
    public string? ResumeArtifactSha256 { get; set; }

    /// <summary>The registered result.</summary>
    public Guid? ResultCheckpointId { get; set; }

    /// <summary>Whether the result was moved to <see cref="PromoteTo"/>.</summary>
    public bool? Promoted { get; set; }

    /// <summary>Runs started (a crash and retry makes it 2).</summary>
    public int Attempts { get; set; }

    /// <summary>The trainer running the job (<c>host:pid:nonce</c>), or who released it for another trainer to take over.</summary>
    public string? WorkerId { get; set; }

    /// <summary>
    /// When <see cref="WorkerId"/> last said it still runs the job (UTC). A running job whose heartbeat is older than
    /// <c>VlaCloud:FineTuning:HeartbeatTimeout</c> lost its trainer and is queued again by another one.
    /// </summary>
    public DateTimeOffset? HeartbeatAt { get; set; }

    /// <summary>Hangfire's id of the background job.</summary>
    public string? BackgroundJobId { get; set; }

    /// <summary>When a cancel was asked for (UTC).</summary>
    public DateTimeOffset? CancelRequestedAt { get; set; }

    /// <summary>The key that created it.</summary>
    public Guid? CreatedByKeyId { get; set; }

    /// <summary>When it was created (UTC).</summary>
    public DateTimeOffset CreatedAt { get; set; } = DateTimeOffset.UtcNow;

    /// <summary>When the first run started (UTC).</summary>
    public DateTimeOffset? StartedAt { get; set; }

    /// <summary>When it reached a final status (UTC).</summary>
    public DateTimeOffset? FinishedAt { get; set; }
}

/// <summary>One event of a job (OpenAI's shape): a message or a metrics record.</summary>
public sealed class JobEvent : ITenantOwned
{
    /// <summary>Sequence number: events are ordered by it and paged after it.</summary>
    public long Id { get; set; }

    /// <summary>The job.</summary>
    public Guid JobId { get; set; }

    /// <summary>Owning tenant (the job's).</summary>
    public Guid? TenantId { get; set; }

    /// <summary><c>info</c>, <c>warn</c> or <c>error</c>.</summary>
    public required string Level { get; set; }

    /// <summary><c>message</c> or <c>metrics</c>.</summary>
    public required string Type { get; set; }

    /// <summary>Human-readable text.</summary>
    public required string Message { get; set; }

    /// <summary>Structured data (JSON object), e.g. a step's losses.</summary>
    public string? Data { get; set; }

    /// <summary>When it happened (UTC).</summary>
    public DateTimeOffset CreatedAt { get; set; } = DateTimeOffset.UtcNow;
}

/// <summary>A training state a job saved at a step (every checkpoint interval), kept in the artifact store.</summary>
public sealed class JobCheckpoint : ITenantOwned
{
    /// <summary>Stable identifier.</summary>
    public Guid Id { get; set; } = Guid.CreateVersion7();

    /// <summary>The job.</summary>
    public Guid JobId { get; set; }

    /// <summary>Owning tenant (the job's).</summary>
    public Guid? TenantId { get; set; }

    /// <summary>Steps done when it was saved.</summary>
    public int Step { get; set; }

    /// <summary>Metrics of that step (JSON object).</summary>
    public string Metrics { get; set; } = "{}";

    /// <summary>SHA-256 of the saved state (a tar of policy, optimizer state and step) in the artifact store.</summary>
    public required string ArtifactSha256 { get; set; }

    /// <summary>Its size in bytes.</summary>
    public long SizeBytes { get; set; }

    /// <summary>When it was saved (UTC).</summary>
    public DateTimeOffset CreatedAt { get; set; } = DateTimeOffset.UtcNow;
}
