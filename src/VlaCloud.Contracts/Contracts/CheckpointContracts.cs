using System.Text.Json;
using System.Text.Json.Serialization;

namespace VlaCloud.Contracts;

/// <summary>A stored artifact.</summary>
/// <param name="Sha256">SHA-256 of its bytes, lowercase hex.</param>
/// <param name="SizeBytes">Its size.</param>
/// <param name="Uri">The artifact's address in this API (<c>/v1/checkpoints/artifacts/{sha256}</c>); never where the server stores it.</param>
public sealed record ArtifactResponse(
    string Sha256,
    [property: JsonPropertyName("size_bytes")] long SizeBytes,
    string Uri);

/// <summary>Body of <c>POST /v1/checkpoints</c>.</summary>
/// <param name="Model">Model name; the checkpoint becomes its next version for the embodiment.</param>
/// <param name="Embodiment">Embodiment id or name.</param>
/// <param name="ArtifactSha256">SHA-256 of an artifact stored with <c>POST /v1/checkpoints/artifacts</c>.</param>
/// <param name="Config">The model configuration (the checkpoint's <c>config.json</c>).</param>
/// <param name="NormalizationStats">Normalisation statistics per embodiment (the checkpoint's <c>normalization.json</c>).</param>
/// <param name="Metrics">Optional metrics object.</param>
/// <param name="ParentCheckpointId">The checkpoint it was fine-tuned from.</param>
/// <param name="DatasetId">The dataset it was trained on.</param>
/// <param name="FineTuningJobId">The job that made it.</param>
public sealed record RegisterCheckpointRequest(
    string Model,
    string Embodiment,
    [property: JsonPropertyName("artifact_sha256")] string ArtifactSha256,
    JsonElement Config,
    [property: JsonPropertyName("normalization_stats")] JsonElement NormalizationStats,
    JsonElement Metrics = default,
    [property: JsonPropertyName("parent_checkpoint_id")] Guid? ParentCheckpointId = null,
    [property: JsonPropertyName("dataset_id")] Guid? DatasetId = null,
    [property: JsonPropertyName("fine_tuning_job_id")] Guid? FineTuningJobId = null);

/// <summary>A registered checkpoint.</summary>
/// <param name="Id">Checkpoint id.</param>
/// <param name="Model">Model name.</param>
/// <param name="Version">Version of the model for its embodiment.</param>
/// <param name="IsPublic">Whether it belongs to no tenant.</param>
/// <param name="EmbodimentId">Embodiment id.</param>
/// <param name="Embodiment">Embodiment name.</param>
/// <param name="ArtifactUri">Its file's address in this API (<c>/v1/checkpoints/artifacts/{sha256}</c>); never where the server stores it.</param>
/// <param name="Sha256">SHA-256 of its file.</param>
/// <param name="SizeBytes">Size of its file.</param>
/// <param name="Config">Model configuration.</param>
/// <param name="NormalizationStats">Normalisation statistics.</param>
/// <param name="Metrics">Metrics (an empty object when none).</param>
/// <param name="ParentCheckpointId">Parent checkpoint.</param>
/// <param name="DatasetId">Training dataset.</param>
/// <param name="FineTuningJobId">Job that made it.</param>
/// <param name="CreatedAt">When it was registered.</param>
public sealed record CheckpointResponse(
    Guid Id,
    string Model,
    int Version,
    [property: JsonPropertyName("public")] bool IsPublic,
    [property: JsonPropertyName("embodiment_id")] Guid EmbodimentId,
    string? Embodiment,
    [property: JsonPropertyName("artifact_uri")] string ArtifactUri,
    string Sha256,
    [property: JsonPropertyName("size_bytes")] long SizeBytes,
    JsonElement Config,
    [property: JsonPropertyName("normalization_stats")] JsonElement NormalizationStats,
    JsonElement Metrics,
    [property: JsonPropertyName("parent_checkpoint_id")] Guid? ParentCheckpointId,
    [property: JsonPropertyName("dataset_id")] Guid? DatasetId,
    [property: JsonPropertyName("fine_tuning_job_id")] Guid? FineTuningJobId,
    [property: JsonPropertyName("created_at")] DateTimeOffset CreatedAt);
