using System.Text.Json;
using System.Text.Json.Serialization;

namespace VlaCloud.Contracts;

/// <summary>A fine-tuning job's training options (all optional: the server fills in defaults and the job shows what it used).</summary>
public sealed record FineTuningHyperparameters
{
    /// <summary>Optimizer steps (default 100).</summary>
    public int? Steps { get; init; }
    /// <summary>Action samples per step.</summary>
    [JsonPropertyName("batch_size")] public int? BatchSize { get; init; }
    /// <summary>Peak learning rate of the action expert; the VLM and the bridge get fixed ratios of it.</summary>
    [JsonPropertyName("learning_rate")] public double? LearningRate { get; init; }
    /// <summary>Linear warm-up steps.</summary>
    [JsonPropertyName("warmup_steps")] public int? WarmupSteps { get; init; }
    /// <summary>Spatial samples per action sample (st4vla).</summary>
    [JsonPropertyName("spatial_ratio")] public double? SpatialRatio { get; init; }
    /// <summary>Factor on the action loss's gradient into the VLM.</summary>
    [JsonPropertyName("gradient_decay")] public double? GradientDecay { get; init; }
    /// <summary>Spatial prompt on instructions (on for st4vla, off for vanilla).</summary>
    [JsonPropertyName("spatial_prompt")] public bool? SpatialPrompt { get; init; }
    /// <summary>Seed of data order, noise and flow times.</summary>
    public long? Seed { get; init; }
    /// <summary>Save a resumable training state every this many steps.</summary>
    [JsonPropertyName("checkpoint_interval")] public int? CheckpointInterval { get; init; }
    /// <summary><c>st4vla</c> (spatial co-training) or <c>vanilla</c> (action loss only).</summary>
    public string? Mode { get; init; }
}

/// <summary>Body of <c>POST /v1/fine_tuning/jobs</c>.</summary>
/// <param name="Base">The checkpoint to start from: an id, <c>model@vN</c> or <c>model@alias</c>.</param>
/// <param name="Dataset">A ready dataset's id.</param>
/// <param name="Model">Name of the result model; the result is its next version for the dataset's embodiment.</param>
/// <param name="Hyperparameters">Training options; omitted ones get defaults.</param>
/// <param name="Evaluate">Evaluate the result in the built-in simulator (simulator embodiments only).</param>
/// <param name="PromoteTo">
/// Alias of the result model to move to the result when it beats the alias's current holder: closed-loop success in the
/// simulator first (both on the same episodes), action error on demonstrations only on a tie or off the simulator.
/// </param>
/// <param name="NewHead">
/// Required (true) to fine-tune a base trained for an embodiment whose action or state size or cameras differ from the
/// dataset's: the action expert then learns a layout it was not trained on, which is a new head, not a fine-tune. The
/// trainer builds the model for the dataset's layout, copies every base tensor of the same name and shape, and starts the
/// layers that read or write actions and state afresh; the job's events and the result's metrics (<c>new_head</c>) name them.
/// </param>
/// <param name="EvaluationEpisodes">
/// Simulator episodes per evaluation, 1 to 1000 (default 50): the result's, and the alias holder's when promoting.
/// </param>
public sealed record CreateFineTuningJobRequest(
    string Base,
    Guid Dataset,
    string Model,
    FineTuningHyperparameters? Hyperparameters = null,
    bool Evaluate = false,
    [property: JsonPropertyName("promote_to")] string? PromoteTo = null,
    [property: JsonPropertyName("new_head")] bool NewHead = false,
    [property: JsonPropertyName("evaluation_episodes")] int? EvaluationEpisodes = null)
{
    /// <summary>Simulator episodes per evaluation when a request names none.</summary>
    public const int DefaultEvaluationEpisodes = 50;

    /// <summary>The most simulator episodes per evaluation a job may ask for.</summary>
    public const int MaxEvaluationEpisodes = 1000;
}

/// <summary>A fine-tuning job.</summary>
/// <param name="Id">Job id.</param>
/// <param name="Model">The result model's name.</param>
/// <param name="Status"><c>queued</c>, <c>running</c>, <c>succeeded</c>, <c>failed</c> or <c>cancelled</c>.</param>
/// <param name="BaseCheckpointId">The checkpoint it starts from.</param>
/// <param name="DatasetId">The dataset it trains on.</param>
/// <param name="EmbodimentId">The dataset's embodiment.</param>
/// <param name="Hyperparameters">The options it trains with, every default filled in.</param>
/// <param name="Evaluate">Whether the result is evaluated in the simulator.</param>
/// <param name="PromoteTo">Alias the result is promoted to when it beats the current holder.</param>
/// <param name="Step">Steps done.</param>
/// <param name="TotalSteps">Steps to do.</param>
/// <param name="Progress"><see cref="Step"/> / <see cref="TotalSteps"/>.</param>
/// <param name="Metrics">The latest training metrics (loss, …).</param>
/// <param name="Evaluation">
/// The evaluation, when there was one (an empty object otherwise): <c>evaluation</c> holds the result's scores, and a
/// job with <see cref="PromoteTo"/> adds <c>promotion</c>, the decision: <c>decided_by</c> (<c>success</c>,
/// <c>action_mse</c>, <c>no_incumbent</c>, <c>incumbent_unscorable</c> or <c>not_comparable</c>), the deciding
/// criterion's <c>candidate_value</c> and <c>incumbent_value</c>, and <c>promoted</c>.
/// </param>
/// <param name="Error">Why it failed.</param>
/// <param name="LastSavedStep">The step of the last training state saved (0: none yet); a restarted attempt resumes from it.</param>
/// <param name="ResumedFromStep">The saved step the latest attempt resumed from; null when no attempt resumed.</param>
/// <param name="Attempts">Runs of the job so far (a trainer that dies leaves it to the next).</param>
/// <param name="ResultCheckpointId">The registered result, once succeeded.</param>
/// <param name="Promoted">Whether the result was promoted to <see cref="PromoteTo"/>.</param>
/// <param name="CancelRequestedAt">When cancellation was asked for.</param>
/// <param name="CreatedAt">When it was created.</param>
/// <param name="StartedAt">When a trainer first took it.</param>
/// <param name="FinishedAt">When it ended.</param>
/// <param name="EvaluationEpisodes">Simulator episodes per evaluation (null on jobs created before jobs carried it).</param>
public sealed record FineTuningJobResponse(
    Guid Id,
    string Model,
    string Status,
    [property: JsonPropertyName("base_checkpoint_id")] Guid BaseCheckpointId,
    [property: JsonPropertyName("dataset_id")] Guid DatasetId,
    [property: JsonPropertyName("embodiment_id")] Guid EmbodimentId,
    FineTuningHyperparameters Hyperparameters,
    bool Evaluate,
    [property: JsonPropertyName("promote_to")] string? PromoteTo,
    int Step,
    [property: JsonPropertyName("total_steps")] int TotalSteps,
    double Progress,
    JsonElement Metrics,
    JsonElement Evaluation,
    string? Error,
    [property: JsonPropertyName("last_saved_step")] int LastSavedStep,
    [property: JsonPropertyName("resumed_from_step")] int? ResumedFromStep,
    int Attempts,
    [property: JsonPropertyName("result_checkpoint_id")] Guid? ResultCheckpointId,
    bool? Promoted,
    [property: JsonPropertyName("cancel_requested_at")] DateTimeOffset? CancelRequestedAt,
    [property: JsonPropertyName("created_at")] DateTimeOffset CreatedAt,
    [property: JsonPropertyName("started_at")] DateTimeOffset? StartedAt,
    [property: JsonPropertyName("finished_at")] DateTimeOffset? FinishedAt,
    [property: JsonPropertyName("evaluation_episodes")] int? EvaluationEpisodes = null)
{
    /// <summary>The object type.</summary>
    [JsonPropertyName("object")] public string Object => "fine_tuning.job";

    /// <summary>Whether the job has ended (succeeded, failed or cancelled).</summary>
    [JsonIgnore] public bool IsFinished => Status is "succeeded" or "failed" or "cancelled";
}

/// <summary>An event of a job; <c>id</c> is its sequence number (use it as <c>after</c>).</summary>
/// <param name="Id">Sequence number.</param>
/// <param name="JobId">Its job.</param>
/// <param name="Level"><c>info</c>, <c>warn</c> or <c>error</c>.</param>
/// <param name="Type"><c>message</c> or <c>metrics</c>.</param>
/// <param name="Message">Human-readable text.</param>
/// <param name="Data">Structured data (a metrics event's step and losses; an empty object when none).</param>
/// <param name="CreatedAt">When it happened.</param>
public sealed record JobEventResponse(
    long Id,
    [property: JsonPropertyName("job_id")] Guid JobId,
    string Level,
    string Type,
    string Message,
    JsonElement Data,
    [property: JsonPropertyName("created_at")] DateTimeOffset CreatedAt)
{
    /// <summary>The object type.</summary>
    [JsonPropertyName("object")] public string Object => "fine_tuning.job.event";
}

/// <summary>A training state a job saved.</summary>
/// <param name="Id">Its id.</param>
/// <param name="JobId">Its job.</param>
/// <param name="Step">The step it was saved at.</param>
/// <param name="Metrics">Training metrics at that step.</param>
/// <param name="ArtifactSha256">SHA-256 of the saved state.</param>
/// <param name="SizeBytes">Its size.</param>
/// <param name="CreatedAt">When it was saved.</param>
public sealed record JobCheckpointResponse(
    Guid Id,
    [property: JsonPropertyName("job_id")] Guid JobId,
    int Step,
    JsonElement Metrics,
    [property: JsonPropertyName("artifact_sha256")] string ArtifactSha256,
    [property: JsonPropertyName("size_bytes")] long SizeBytes,
    [property: JsonPropertyName("created_at")] DateTimeOffset CreatedAt)
{
    /// <summary>The object type.</summary>
    [JsonPropertyName("object")] public string Object => "fine_tuning.job.checkpoint";
}

/// <summary>One step of a job's training series.</summary>
/// <param name="Step">Training step.</param>
/// <param name="Loss">Total loss.</param>
/// <param name="ActionLoss">The action expert's loss.</param>
/// <param name="SpatialLoss">The spatial loss (null on steps without spatial samples).</param>
/// <param name="LearningRate">The action expert's learning rate.</param>
/// <param name="VlmLearningRate">System 2's learning rate.</param>
/// <param name="GradientNorm">Gradient norm before clipping.</param>
public sealed record JobMetricsStep(
    int Step,
    double Loss,
    [property: JsonPropertyName("action_loss")] double? ActionLoss,
    [property: JsonPropertyName("spatial_loss")] double? SpatialLoss,
    [property: JsonPropertyName("learning_rate")] double? LearningRate,
    [property: JsonPropertyName("vlm_learning_rate")] double? VlmLearningRate,
    [property: JsonPropertyName("gradient_norm")] double? GradientNorm);

/// <summary>An evaluation of a job's policy.</summary>
/// <param name="Step">The step evaluated.</param>
/// <param name="Metrics">Its numbers by name (success_rate, action_mse, …).</param>
public sealed record JobMetricsEvaluation(int Step, IReadOnlyDictionary<string, double> Metrics);

/// <summary>
/// A job's training series as data (<c>GET /v1/fine_tuning/jobs/{id}/metrics</c>; CSV with <c>Accept: text/csv</c>),
/// for TensorBoard, W&amp;B or a notebook.
/// </summary>
/// <param name="JobId">The job.</param>
/// <param name="TotalSteps">Steps the job runs.</param>
/// <param name="Steps">One entry per reported step, in step order (a resumed run's repeated steps keep their latest value).</param>
/// <param name="Evaluations">Evaluations in order.</param>
/// <param name="SavedSteps">Steps whose training state was saved (a resume starts from one of them).</param>
/// <param name="ResumedFromSteps">Steps an attempt resumed from.</param>
public sealed record JobMetricsResponse(
    [property: JsonPropertyName("job_id")] Guid JobId,
    [property: JsonPropertyName("total_steps")] int TotalSteps,
    IReadOnlyList<JobMetricsStep> Steps,
    IReadOnlyList<JobMetricsEvaluation> Evaluations,
    [property: JsonPropertyName("saved_steps")] IReadOnlyList<int> SavedSteps,
    [property: JsonPropertyName("resumed_from_steps")] IReadOnlyList<int> ResumedFromSteps)
{
    /// <summary>The object type.</summary>
    [JsonPropertyName("object")] public string Object => "fine_tuning.job.metrics";
}
