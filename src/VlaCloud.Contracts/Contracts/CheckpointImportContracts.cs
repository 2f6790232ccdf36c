using System.Text.Json.Serialization;

namespace VlaCloud.Contracts;

/// <summary>
/// Body of <c>POST /v1/checkpoints/imports</c>: convert a released InternVLA-M1 run, uploaded as a bundle (a tar of
/// <c>config.yaml</c>, <c>dataset_statistics.json</c>, <c>checkpoints/steps_N_pytorch_model.pt</c> and
/// <c>qwen/config.json</c>, <c>qwen/tokenizer.json</c>), and register it as the next version of a model.
/// </summary>
/// <param name="Model">Model name; the result becomes its next version for the embodiment.</param>
/// <param name="Embodiment">Embodiment (id or name) to register for; may be left out when <paramref name="Embodiments"/> maps one tag.</param>
/// <param name="Embodiments">Renames of <c>dataset_statistics.json</c>'s tags to embodiment names, e.g. <c>{"oxe_bridge": "widowx"}</c>.</param>
/// <param name="Upload">A completed upload of purpose <c>checkpoint_import</c> holding the bundle.</param>
/// <param name="ArtifactSha256">Or: the SHA-256 of a stored artifact holding the bundle.</param>
/// <param name="CheckpointFile">A <c>.pt</c> file name in the bundle's <c>checkpoints/</c> to read instead of the highest step.</param>
public sealed record CreateCheckpointImportRequest(
    string Model,
    string? Embodiment = null,
    IReadOnlyDictionary<string, string>? Embodiments = null,
    Guid? Upload = null,
    [property: JsonPropertyName("artifact_sha256")] string? ArtifactSha256 = null,
    [property: JsonPropertyName("checkpoint_file")] string? CheckpointFile = null);

/// <summary>An import of a released run.</summary>
/// <param name="Id">Import id.</param>
/// <param name="Status"><c>queued</c>, <c>running</c>, <c>succeeded</c> or <c>failed</c>.</param>
/// <param name="Model">Model name.</param>
/// <param name="EmbodimentId">Embodiment id.</param>
/// <param name="Embodiment">Embodiment name.</param>
/// <param name="Embodiments">Renames of the statistics' tags.</param>
/// <param name="UploadId">The upload that carried the bundle.</param>
/// <param name="ArtifactSha256">SHA-256 of the bundle.</param>
/// <param name="SizeBytes">Size of the bundle.</param>
/// <param name="CheckpointFile">The <c>.pt</c> asked for, if any.</param>
/// <param name="CheckpointId">The registered checkpoint, once succeeded.</param>
/// <param name="Error">Why it failed, naming the file or tensor.</param>
/// <param name="CreatedAt">When it was asked for.</param>
/// <param name="StartedAt">When a trainer started it.</param>
/// <param name="FinishedAt">When it ended.</param>
public sealed record CheckpointImportResponse(
    Guid Id,
    string Status,
    string Model,
    [property: JsonPropertyName("embodiment_id")] Guid EmbodimentId,
    string? Embodiment,
    IReadOnlyDictionary<string, string> Embodiments,
    [property: JsonPropertyName("upload_id")] Guid? UploadId,
    [property: JsonPropertyName("artifact_sha256")] string ArtifactSha256,
    [property: JsonPropertyName("size_bytes")] long SizeBytes,
    [property: JsonPropertyName("checkpoint_file")] string? CheckpointFile,
    [property: JsonPropertyName("checkpoint_id")] Guid? CheckpointId,
    string? Error,
    [property: JsonPropertyName("created_at")] DateTimeOffset CreatedAt,
    [property: JsonPropertyName("started_at")] DateTimeOffset? StartedAt,
    [property: JsonPropertyName("finished_at")] DateTimeOffset? FinishedAt)
{
    /// <summary>The object type.</summary>
    [JsonPropertyName("object")] public string Object => "checkpoint.import";
}
