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

    /// <summary>Postgres <c>xmin</c>, so concurrent admin edits do not silently overwrite each other.</summary>
    public uint RowVersion { get; set; }

    /// <summary>The tenant's API keys.</summary>
    public List<ApiKey> ApiKeys { get; set; } = [];
}
