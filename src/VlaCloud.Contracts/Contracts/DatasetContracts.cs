using System.Text.Json;
using System.Text.Json.Serialization;

namespace VlaCloud.Contracts;

/// <summary>One problem found in a dataset.</summary>
/// <param name="File">The file (path inside the archive) the problem is in.</param>
/// <param name="Message">What is wrong.</param>
public sealed record DatasetIssueResponse(string File, string Message);

/// <summary>A dataset.</summary>
/// <param name="Id">Dataset id.</param>
/// <param name="Name">Its name (the uploaded file's).</param>
/// <param name="Status"><c>validating</c>, <c>ready</c> or <c>failed</c>.</param>
/// <param name="EmbodimentId">Its embodiment's id.</param>
/// <param name="Embodiment">Its embodiment's name.</param>
/// <param name="UploadId">The upload that made it.</param>
/// <param name="ArtifactSha256">SHA-256 of the stored archive.</param>
/// <param name="SizeBytes">Size of the archive.</param>
/// <param name="Format">The LeRobot format found, once validated.</param>
/// <param name="Episodes">Episodes, once validated.</param>
/// <param name="Frames">Frames, once validated.</param>
/// <param name="Issues">The problems validation found (why it failed).</param>
/// <param name="Statistics">Statistics of its features (an empty object until ready).</param>
/// <param name="CreatedAt">When it was created.</param>
/// <param name="ValidatedAt">When validation ended.</param>
public sealed record DatasetResponse(
    Guid Id,
    string Name,
    string Status,
    [property: JsonPropertyName("embodiment_id")] Guid EmbodimentId,
    string? Embodiment,
    [property: JsonPropertyName("upload_id")] Guid? UploadId,
    [property: JsonPropertyName("artifact_sha256")] string ArtifactSha256,
    [property: JsonPropertyName("size_bytes")] long SizeBytes,
    string? Format,
    int? Episodes,
    int? Frames,
    IReadOnlyList<DatasetIssueResponse> Issues,
    JsonElement Statistics,
    [property: JsonPropertyName("created_at")] DateTimeOffset CreatedAt,
    [property: JsonPropertyName("validated_at")] DateTimeOffset? ValidatedAt)
{
    /// <summary>The object type.</summary>
    [JsonPropertyName("object")] public string Object => "dataset";
}
