namespace VlaCloud.Registry.Entities;

/// <summary>One tenant's metered use of one checkpoint on one UTC day; upserted by the meter.</summary>
public sealed class UsageDay
{
    /// <summary>The tenant.</summary>
    public Guid TenantId { get; set; }

    /// <summary>The UTC day.</summary>
    public DateOnly Day { get; set; }

    /// <summary>The checkpoint served (<see cref="Guid.Empty"/> for use not tied to one).</summary>
    public Guid CheckpointId { get; set; }

    /// <summary>Requests served.</summary>
    public long Requests { get; set; }

    /// <summary>Action chunks returned.</summary>
    public long Actions { get; set; }

    /// <summary>Compute time charged, in milliseconds.</summary>
    public long ComputeMs { get; set; }
}

/// <summary>The last version handed out per (owner, embodiment, model name).</summary>
public sealed class ModelVersionCounter
{
    /// <summary>The owning tenant, <see cref="Guid.Empty"/> for public models (a key column cannot be null).</summary>
    public Guid OwnerId { get; set; }

    /// <summary>The embodiment.</summary>
    public Guid EmbodimentId { get; set; }

    /// <summary>The model name.</summary>
    public required string ModelName { get; set; }

    /// <summary>The highest version allocated.</summary>
    public int LastVersion { get; set; }
}
