namespace VlaCloud.Sim;

/// <summary>A point or direction on the table, in table units (the table is the unit square, y down).</summary>
public readonly record struct Vec2(double X, double Y)
{
    /// <summary>Euclidean length.</summary>
    public double Length => Math.Sqrt(X * X + Y * Y);

    /// <summary>This vector scaled to length 1 (zero stays zero).</summary>
    public Vec2 Normalized() => Length < 1e-12 ? default : this / Length;

    /// <summary>Sum.</summary>
    public static Vec2 operator +(Vec2 a, Vec2 b) => new(a.X + b.X, a.Y + b.Y);

    /// <summary>Difference.</summary>
    public static Vec2 operator -(Vec2 a, Vec2 b) => new(a.X - b.X, a.Y - b.Y);

    /// <summary>Scaling.</summary>
    public static Vec2 operator *(Vec2 a, double k) => new(a.X * k, a.Y * k);

    /// <summary>Division by a scalar.</summary>
    public static Vec2 operator /(Vec2 a, double k) => new(a.X / k, a.Y / k);

    /// <summary>Dot product.</summary>
    public static double Dot(Vec2 a, Vec2 b) => a.X * b.X + a.Y * b.Y;

    /// <summary>Distance between two points.</summary>
    public static double Distance(Vec2 a, Vec2 b) => (a - b).Length;

    /// <summary>Each coordinate clamped to [lo, hi].</summary>
    public Vec2 Clamp(double lo, double hi) => new(Math.Clamp(X, lo, hi), Math.Clamp(Y, lo, hi));
}

/// <summary>The two task families.</summary>
public enum TaskKind
{
    /// <summary>"Pick X and place it in Y": grasp, carry, release inside the destination.</summary>
    PickPlace,
    /// <summary>"Push X to Y": move the object into the destination with the lowered gripper, never grasping it.</summary>
    Push,
}

/// <summary>A destination: a bowl or tray of a colour, centred at <paramref name="Center"/>.</summary>
/// <param name="Kind">Bowl or tray.</param>
/// <param name="Color">Its colour (a destination colour, never an object colour).</param>
/// <param name="Center">Centre on the table.</param>
/// <param name="HalfSize">Bowl radius or tray half-side, in table units.</param>
public sealed record Destination(DestinationKind Kind, SimColor Color, Vec2 Center, double HalfSize)
{
    /// <summary>The words an instruction uses for it, e.g. "black bowl".</summary>
    public string Phrase => $"{Color.Name} {Catalog.DestinationNoun(Kind)}";

    /// <summary>Whether a disc of radius <paramref name="radius"/> at <paramref name="p"/> counts as in the destination.</summary>
    public bool Contains(Vec2 p, double radius)
    {
        // The object's centre must be well inside: at most half its radius may hang over the rim.
        var limit = HalfSize - radius * 0.5;
        var d = p - Center;
        return Kind == DestinationKind.Bowl
            ? d.Length <= limit
            : Math.Abs(d.X) <= limit && Math.Abs(d.Y) <= limit;
    }
}

/// <summary>What to do in an episode.</summary>
/// <param name="Kind">Pick-and-place or push.</param>
/// <param name="TargetObject">Index of the object to move in <see cref="SceneSpec.Objects"/>.</param>
/// <param name="TargetDestination">Index of the destination in <see cref="SceneSpec.Destinations"/>.</param>
/// <param name="Instruction">The natural-language instruction given to the policy.</param>
/// <param name="Paraphrased">Whether the instruction comes from the held-out paraphrase templates.</param>
public sealed record TaskSpec(TaskKind Kind, int TargetObject, int TargetDestination, string Instruction, bool Paraphrased);

/// <summary>A complete initial scene: everything needed to start an episode, deterministic given <see cref="Seed"/>.</summary>
/// <param name="Seed">The seed it was sampled from.</param>
/// <param name="Split">The split it was sampled for.</param>
/// <param name="Objects">Object kinds, in a fixed order (indices are object ids).</param>
/// <param name="ObjectPositions">Initial object centres.</param>
/// <param name="Destinations">Destinations (the target one and distractors).</param>
/// <param name="EffectorStart">Initial end-effector position; the gripper starts open.</param>
/// <param name="Task">The task.</param>
public sealed record SceneSpec(
    int Seed,
    string Split,
    IReadOnlyList<ObjectKind> Objects,
    IReadOnlyList<Vec2> ObjectPositions,
    IReadOnlyList<Destination> Destinations,
    Vec2 EffectorStart,
    TaskSpec Task)
{
    /// <summary>The object the task is about.</summary>
    public ObjectKind TargetKind => Objects[Task.TargetObject];

    /// <summary>The destination the task is about.</summary>
    public Destination TargetDestination => Destinations[Task.TargetDestination];
}

/// <summary>An immutable snapshot of the world at one step (ground truth, for the expert and for labels).</summary>
/// <param name="Scene">The scene the episode started from.</param>
/// <param name="ObjectPositions">Current object centres.</param>
/// <param name="Effector">End-effector position.</param>
/// <param name="GripperClosed">Whether the gripper is closed (lowered).</param>
/// <param name="HeldObject">Index of the grasped object, or -1.</param>
/// <param name="Step">Steps taken so far.</param>
/// <param name="TargetEverGrasped">Whether the target has been grasped at any step (fails a push task).</param>
public sealed record WorldState(
    SceneSpec Scene,
    IReadOnlyList<Vec2> ObjectPositions,
    Vec2 Effector,
    bool GripperClosed,
    int HeldObject,
    int Step,
    bool TargetEverGrasped)
{
    /// <summary>Whether the task's goal holds now.</summary>
    public bool IsSuccess
    {
        get
        {
            var task = Scene.Task;
            if (HeldObject == task.TargetObject) return false;
            if (task.Kind == TaskKind.Push && TargetEverGrasped) return false;
            return Scene.TargetDestination.Contains(ObjectPositions[task.TargetObject], Physics.ObjectRadius);
        }
    }
}
