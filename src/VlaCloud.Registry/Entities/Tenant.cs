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

    /// <summary>The tenant's API keys.</summary>
    public List<ApiKey> ApiKeys { get; set; } = [];
}
