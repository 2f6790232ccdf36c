using System.Text.Json.Serialization;

namespace VlaCloud.Contracts;

/// <summary>Body of <c>PUT /v1/models/{model}/aliases/{alias}</c>.</summary>
/// <param name="Checkpoint">The target: an id, <c>model@vN</c> or another alias <c>model@alias</c>.</param>
/// <param name="Reason">Why, kept in the history.</param>
public sealed record SetAliasRequest(string Checkpoint, string? Reason = null);

/// <summary>Body of <c>POST …/rollback</c>.</summary>
/// <param name="Reason">Why, kept in the history.</param>
public sealed record RollbackAliasRequest(string? Reason = null);

/// <summary>An alias.</summary>
/// <param name="Id">Alias id.</param>
/// <param name="Model">Model name.</param>
/// <param name="Alias">Alias name, e.g. <c>production</c>.</param>
/// <param name="IsPublic">Whether it belongs to no tenant.</param>
/// <param name="CheckpointId">The checkpoint it points at.</param>
/// <param name="Version">That checkpoint's version.</param>
/// <param name="UpdatedAt">When it last moved.</param>
public sealed record AliasResponse(
    Guid Id,
    string Model,
    string Alias,
    [property: JsonPropertyName("public")] bool IsPublic,
    [property: JsonPropertyName("checkpoint_id")] Guid CheckpointId,
    int? Version,
    [property: JsonPropertyName("updated_at")] DateTimeOffset UpdatedAt);

/// <summary>One move of an alias.</summary>
/// <param name="Id">Move id.</param>
/// <param name="Model">Model name.</param>
/// <param name="Alias">Alias name.</param>
/// <param name="FromCheckpointId">Where it pointed before (null when created).</param>
/// <param name="ToCheckpointId">Where it points after (null when deleted).</param>
/// <param name="MovedByKeyId">The API key that moved it.</param>
/// <param name="MovedAt">When.</param>
/// <param name="Reason">Why.</param>
public sealed record AliasMoveResponse(
    Guid Id,
    string Model,
    string Alias,
    [property: JsonPropertyName("from_checkpoint_id")] Guid? FromCheckpointId,
    [property: JsonPropertyName("to_checkpoint_id")] Guid? ToCheckpointId,
    [property: JsonPropertyName("moved_by_key_id")] Guid? MovedByKeyId,
    [property: JsonPropertyName("moved_at")] DateTimeOffset MovedAt,
    string? Reason);
