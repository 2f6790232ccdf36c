using System.Text.Json.Serialization;

namespace VlaCloud.Contracts;

/// <summary>Body of <c>POST /v1/uploads</c>.</summary>
/// <param name="Filename">The file's name (1-255 characters); a dataset upload names its dataset after it.</param>
/// <param name="Bytes">The file's exact size.</param>
/// <param name="Sha256">SHA-256 of the whole file, hex; completion verifies it.</param>
/// <param name="Purpose"><c>dataset</c>, <c>checkpoint</c> or <c>checkpoint_import</c>.</param>
/// <param name="MimeType">Optional media type, e.g. <c>application/x-tar</c>.</param>
/// <param name="Embodiment">Embodiment (id or name) of a dataset; may instead be given at completion.</param>
public sealed record CreateUploadRequest(
    string Filename,
    long Bytes,
    string Sha256,
    string Purpose,
    [property: JsonPropertyName("mime_type")] string? MimeType = null,
    string? Embodiment = null);

/// <summary>Body of <c>POST /v1/uploads/{id}/complete</c> (optional).</summary>
/// <param name="PartNumbers">The part numbers the caller sent, to check against the ones received.</param>
/// <param name="Embodiment">Embodiment (id or name) of a dataset, when not given at creation.</param>
public sealed record CompleteUploadRequest(
    [property: JsonPropertyName("part_numbers")] IReadOnlyList<int>? PartNumbers = null,
    string? Embodiment = null);

/// <summary>A received part.</summary>
/// <param name="UploadId">Its upload.</param>
/// <param name="PartNumber">Its number, from 1.</param>
/// <param name="SizeBytes">Its size.</param>
/// <param name="Sha256">SHA-256 of its bytes.</param>
/// <param name="ReceivedAt">When it was (last) received.</param>
public sealed record UploadPartResponse(
    [property: JsonPropertyName("upload_id")] Guid UploadId,
    [property: JsonPropertyName("part_number")] int PartNumber,
    [property: JsonPropertyName("size_bytes")] long SizeBytes,
    string Sha256,
    [property: JsonPropertyName("received_at")] DateTimeOffset ReceivedAt)
{
    /// <summary>The object type.</summary>
    [JsonPropertyName("object")] public string Object => "upload.part";
}

/// <summary>An upload.</summary>
/// <param name="Id">Upload id.</param>
/// <param name="Filename">The file's name.</param>
/// <param name="Bytes">The file's size.</param>
/// <param name="Sha256">The file's SHA-256.</param>
/// <param name="Purpose"><c>dataset</c>, <c>checkpoint</c> or <c>checkpoint_import</c>.</param>
/// <param name="MimeType">Media type, if given.</param>
/// <param name="Embodiment">Embodiment of a dataset, if given at creation.</param>
/// <param name="Status"><c>pending</c>, <c>completed</c>, <c>cancelled</c> or <c>expired</c>.</param>
/// <param name="ReceivedBytes">Bytes of the parts received so far.</param>
/// <param name="Parts">The parts received, in order.</param>
/// <param name="ArtifactSha256">SHA-256 of the stored file, once completed.</param>
/// <param name="DatasetId">The dataset a completed dataset upload made.</param>
/// <param name="CreatedAt">When it was created.</param>
/// <param name="ExpiresAt">When it expires unless completed.</param>
/// <param name="CompletedAt">When it was completed.</param>
public sealed record UploadResponse(
    Guid Id,
    string Filename,
    long Bytes,
    string Sha256,
    string Purpose,
    [property: JsonPropertyName("mime_type")] string? MimeType,
    string? Embodiment,
    string Status,
    [property: JsonPropertyName("received_bytes")] long ReceivedBytes,
    IReadOnlyList<UploadPartResponse> Parts,
    [property: JsonPropertyName("artifact_sha256")] string? ArtifactSha256,
    [property: JsonPropertyName("dataset_id")] Guid? DatasetId,
    [property: JsonPropertyName("created_at")] DateTimeOffset CreatedAt,
    [property: JsonPropertyName("expires_at")] DateTimeOffset ExpiresAt,
    [property: JsonPropertyName("completed_at")] DateTimeOffset? CompletedAt)
{
    /// <summary>The object type.</summary>
    [JsonPropertyName("object")] public string Object => "upload";
}
