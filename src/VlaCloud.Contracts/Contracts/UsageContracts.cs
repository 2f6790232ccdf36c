using System.Text.Json.Serialization;

namespace VlaCloud.Contracts;

/// <summary>Usage over a range of days.</summary>
/// <param name="From">First day (UTC).</param>
/// <param name="To">Last day (UTC, inclusive).</param>
/// <param name="Data">One row per day and checkpoint.</param>
/// <param name="TotalRequests">Requests over the range.</param>
/// <param name="TotalActions">Actions returned over the range.</param>
/// <param name="TotalComputeMs">Compute milliseconds over the range.</param>
/// <param name="ComputeQuota">The monthly compute quota.</param>
public sealed record UsageResponse(
    DateOnly From,
    DateOnly To,
    IReadOnlyList<UsageDayResponse> Data,
    [property: JsonPropertyName("total_requests")] long TotalRequests,
    [property: JsonPropertyName("total_actions")] long TotalActions,
    [property: JsonPropertyName("total_compute_ms")] long TotalComputeMs,
    [property: JsonPropertyName("compute_quota")] QuotaResponse ComputeQuota);

/// <summary>One day's use of one checkpoint.</summary>
/// <param name="Day">The UTC day.</param>
/// <param name="CheckpointId">The checkpoint, or null for use not tied to one.</param>
/// <param name="Requests">Requests.</param>
/// <param name="Actions">Actions returned.</param>
/// <param name="ComputeMs">Compute milliseconds.</param>
/// <param name="Model">The checkpoint's model name (null when the use is not tied to a checkpoint, or it is gone).</param>
/// <param name="Version">The checkpoint's version.</param>
public sealed record UsageDayResponse(
    DateOnly Day,
    [property: JsonPropertyName("checkpoint_id")] Guid? CheckpointId,
    long Requests,
    long Actions,
    [property: JsonPropertyName("compute_ms")] long ComputeMs,
    string? Model = null,
    int? Version = null);

/// <summary>The monthly compute quota.</summary>
/// <param name="LimitMs">Milliseconds per month.</param>
/// <param name="UsedMs">Used this month.</param>
/// <param name="RemainingMs">Left this month.</param>
/// <param name="ResetsAt">When it resets.</param>
public sealed record QuotaResponse(
    [property: JsonPropertyName("limit_ms")] long LimitMs,
    [property: JsonPropertyName("used_ms")] long UsedMs,
    [property: JsonPropertyName("remaining_ms")] long RemainingMs,
    [property: JsonPropertyName("resets_at")] DateTimeOffset ResetsAt);
