namespace VlaCloud.Registry.Entities;

/// <summary>
/// A movable name for one checkpoint of a model (<c>production</c>, <c>staging</c>, …). Moving it is how a
/// version is promoted or rolled back; every move is kept in <see cref="AliasMove"/>.
/// </summary>
public sealed class CheckpointAlias : ITenantOwned
{
    /// <summary>Stable identifier.</summary>
    public Guid Id { get; set; } = Guid.CreateVersion7();

    /// <summary>Owning tenant; null for an alias on a public model.</summary>
    public Guid? TenantId { get; set; }

    /// <summary>The model the alias names a version of.</summary>
    public required string ModelName { get; set; }

    /// <summary>The alias, e.g. <c>production</c>.</summary>
    public required string Name { get; set; }

    /// <summary>The checkpoint it points at.</summary>
    public Guid CheckpointId { get; set; }

    /// <summary>The checkpoint (navigation).</summary>
    public Checkpoint? Checkpoint { get; set; }

    /// <summary>Last move (UTC).</summary>
    public DateTimeOffset UpdatedAt { get; set; } = DateTimeOffset.UtcNow;

    /// <summary>Postgres <c>xmin</c>: two concurrent moves cannot both win.</summary>
    public uint RowVersion { get; set; }
}

/// <summary>One change of an alias: set, move or delete, with who and when.</summary>
public sealed class AliasMove : ITenantOwned
{
    /// <summary>Stable identifier (ordered by time).</summary>
    public Guid Id { get; set; } = Guid.CreateVersion7();

    /// <summary>Owning tenant of the alias.</summary>
    public Guid? TenantId { get; set; }

    /// <summary>Model name.</summary>
    public required string ModelName { get; set; }

    /// <summary>Alias name.</summary>
    public required string Alias { get; set; }

    /// <summary>Where it pointed before; null when it was created.</summary>
    public Guid? FromCheckpointId { get; set; }

    /// <summary>Where it points now; null when it was deleted.</summary>
    public Guid? ToCheckpointId { get; set; }

    /// <summary>The API key that moved it.</summary>
    public Guid? MovedByKeyId { get; set; }

    /// <summary>When (UTC).</summary>
    public DateTimeOffset MovedAt { get; set; } = DateTimeOffset.UtcNow;

    /// <summary>Why, in the mover's words.</summary>
    public string? Reason { get; set; }
}
