namespace VlaCloud.Registry.Entities;

/// <summary>
/// A robot body a policy drives: what its actions and state mean and which cameras it has.
/// Tenant-owned, or public (no tenant) for the built-in ones.
/// </summary>
public sealed class Embodiment : ITenantOwned
{
    /// <summary>Stable identifier.</summary>
    public Guid Id { get; set; } = Guid.CreateVersion7();

    /// <summary>Owning tenant; null for a public embodiment every tenant sees.</summary>
    public Guid? TenantId { get; set; }

    /// <summary>Name unique within the owner, e.g. <c>widowx-bridge</c>.</summary>
    public required string Name { get; set; }

    /// <summary>Free text.</summary>
    public string? Description { get; set; }

    /// <summary>Length of one action vector.</summary>
    public int ActionDim { get; set; }

    /// <summary>Length of the proprioceptive state vector (0 when the policy gets no state).</summary>
    public int StateDim { get; set; }

    /// <summary>What an action means, e.g. <c>delta_eef+gripper</c> or <c>joint_position</c>.</summary>
    public required string ActionSpace { get; set; }

    /// <summary>One name per action dimension (x, y, z, roll, pitch, yaw, gripper).</summary>
    public string[] ActionNames { get; set; } = [];

    /// <summary>One name per state dimension.</summary>
    public string[] StateNames { get; set; } = [];

    /// <summary>The cameras and their image sizes.</summary>
    public List<EmbodimentCamera> Cameras { get; set; } = [];

    /// <summary>Control frequency in Hz.</summary>
    public double ControlHz { get; set; }

    /// <summary>Actions per predicted chunk.</summary>
    public int ChunkLength { get; set; }

    /// <summary>
    /// The built-in environment that can run this body closed-loop (so fine-tuning can evaluate by episodes), e.g.
    /// <c>sim-tabletop</c>; null for a real robot. Set when the embodiment is created, and only to a known environment
    /// whose robot has this layout: whether closed-loop evaluation applies is read here, never guessed from the name or shape.
    /// </summary>
    public string? Simulator { get; set; }

    /// <summary>
    /// Action dimensions that are binary (a gripper's open/close, 0 or 1), in ascending order: training keeps them
    /// unnormalised and serving rounds them. Empty when every dimension is continuous.
    /// </summary>
    public int[] BinaryActionDims { get; set; } = [];

    /// <summary>When it was created (UTC).</summary>
    public DateTimeOffset CreatedAt { get; set; } = DateTimeOffset.UtcNow;
}

/// <summary>One camera of an embodiment.</summary>
public sealed class EmbodimentCamera
{
    /// <summary>Name used as the observation key, e.g. <c>wrist</c>.</summary>
    public required string Name { get; set; }

    /// <summary>Image width in pixels.</summary>
    public int Width { get; set; }

    /// <summary>Image height in pixels.</summary>
    public int Height { get; set; }
}
