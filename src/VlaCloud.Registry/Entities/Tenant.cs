namespace VlaCloud.Registry.Entities;

/// <summary>A customer organisation; every private resource belongs to exactly one tenant.</summary>
public sealed class Tenant
{
    /// <summary>Stable identifier (UUID v7, so ids sort by creation time).</summary>
    public Guid Id { get; set; } = Guid.CreateVersion7();

    /// <summary>URL-safe unique name, e.g. <c>acme-robotics</c>.</summary>
    public required string Name { get; set; }

    /// <summary>Human-readable name.</summary>
    public string? DisplayName { get; set; }

    /// <summary>When the tenant was created (UTC).</summary>
    public DateTimeOffset CreatedAt { get; set; } = DateTimeOffset.UtcNow;

    /// <summary>Requests per second its keys may make together; null takes the deployment default.</summary>
    public double? RequestsPerSecond { get; set; }

    /// <summary>Requests that may be made in a burst above the rate; null takes the default.</summary>
    public int? Burst { get; set; }

    /// <summary>Streams (WebSocket sessions) open at once; null takes the default.</summary>
    public int? MaxConcurrentStreams { get; set; }

    /// <summary>Compute milliseconds per UTC calendar month; null takes the default.</summary>
    public long? MonthlyComputeMsQuota { get; set; }

    /// <summary>Bytes its artifacts, datasets and pending uploads may take together; null takes the default.</summary>
    public long? StorageQuotaBytes { get; set; }

    /// <summary>
    /// The tenant's weight in the inference engine's fair sharing of the queue and of each batch (2: twice the share of a
    /// tenant of weight 1), between <see cref="MinInferenceWeight"/> and <see cref="MaxInferenceWeight"/>. Only the
    /// platform administrator sets it.
    /// </summary>
    public double InferenceWeight { get; set; } = DefaultInferenceWeight;

    /// <summary>The weight of a tenant nobody gave one.</summary>
    public const double DefaultInferenceWeight = 1;

    /// <summary>Smallest weight: a tenant still gets a tenth of an ordinary share, never none.</summary>
    public const double MinInferenceWeight = 0.1;

    /// <summary>Largest weight, so one tenant's share stays bounded against the others'.</summary>
    public const double MaxInferenceWeight = 100;

    /// <summary>Postgres <c>xmin</c>, so concurrent admin edits do not silently overwrite each other.</summary>
    public uint RowVersion { get; set; }

    /// <summary>The tenant's API keys.</summary>
    public List<ApiKey> ApiKeys { get; set; } = [];
}
