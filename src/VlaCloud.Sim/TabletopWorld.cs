namespace VlaCloud.Sim;

/// <summary>The physical constants of the tabletop, in table units (the table is the unit square).</summary>
public static class Physics
{
    /// <summary>Largest end-effector displacement per step along each axis.</summary>
    public const double MaxStep = 0.05;

    /// <summary>Collision radius of every object (all shapes are discs to physics).</summary>
    public const double ObjectRadius = 0.055;

    /// <summary>Radius of the lowered gripper when it acts as a pusher.</summary>
    public const double EffectorRadius = 0.04;

    /// <summary>Closing the gripper grasps an object only if its centre is this close to the end-effector.</summary>
    public const double GraspRadius = 0.045;

    /// <summary>Bowl radius / tray half-side.</summary>
    public const double DestinationHalfSize = 0.11;

    /// <summary>Motion is integrated in sub-steps no longer than this, so a push never tunnels through an object.</summary>
    internal const double SubStep = 0.01;

    /// <summary>Smallest and largest coordinate of an object centre or the end-effector: nothing leaves the table.</summary>
    public const double MinCoord = ObjectRadius, MaxCoord = 1 - ObjectRadius;
}

/// <summary>
/// The tabletop's state and its step function. A 2.5-D world seen from above: the open gripper is
/// raised and passes over objects; closing lowers it, and if an object's centre is within
/// <see cref="Physics.GraspRadius"/> it is grasped and lifted (it then moves with the gripper and passes
/// over others); closed and empty, the gripper rests on the table and pushes what it touches. Opening
/// releases a held object where it is. Objects on the table do not overlap each other and stay on the
/// table; a pusher blocked by an object at the table's edge stops. Deterministic: no randomness here.
/// </summary>
public sealed class TabletopWorld
{
    private readonly Vec2[] _objects;
    private Vec2 _effector;
    private bool _closed;
    private int _held = -1;
    private bool _targetEverGrasped;

    /// <summary>Starts an episode from <paramref name="scene"/>.</summary>
    public TabletopWorld(SceneSpec scene)
    {
        Scene = scene;
        _objects = [.. scene.ObjectPositions];
        _effector = scene.EffectorStart;
    }

    /// <summary>The scene this episode started from.</summary>
    public SceneSpec Scene { get; }

    /// <summary>Steps taken so far.</summary>
    public int Step { get; private set; }

    /// <summary>End-effector position.</summary>
    public Vec2 Effector => _effector;

    /// <summary>Whether the gripper is closed (lowered).</summary>
    public bool GripperClosed => _closed;

    /// <summary>Index of the grasped object, or -1.</summary>
    public int HeldObject => _held;

    /// <summary>Current object centres.</summary>
    public IReadOnlyList<Vec2> ObjectPositions => _objects;

    /// <summary>An immutable copy of the current state.</summary>
    public WorldState Snapshot() => new(Scene, [.. _objects], _effector, _closed, _held, Step, _targetEverGrasped);

    /// <summary>Whether the task's goal holds now.</summary>
    public bool IsSuccess => Snapshot().IsSuccess;

    /// <summary>
    /// Proprioceptive state: end-effector x, y and the gripper opening (1 open, 0 closed on nothing,
    /// 0.5 closed on an object — what finger width would report).
    /// </summary>
    public float[] State() => [(float)_effector.X, (float)_effector.Y, _closed ? (_held >= 0 ? 0.5f : 0f) : 1f];

    /// <summary>Applies one action <c>[dx, dy, gripper]</c>: the gripper command first, then the motion.</summary>
    public void Apply(ReadOnlySpan<float> action)
    {
        if (action.Length < 3) throw new ArgumentException("an action has 3 values: dx, dy, gripper", nameof(action));
        var close = action[2] > 0.5f;
        if (close && !_closed) CloseGripper();
        else if (!close && _closed) OpenGripper();

        var delta = new Vec2(
            Math.Clamp(Finite(action[0]), -Physics.MaxStep, Physics.MaxStep),
            Math.Clamp(Finite(action[1]), -Physics.MaxStep, Physics.MaxStep));
        var substeps = Math.Max(1, (int)Math.Ceiling(delta.Length / Physics.SubStep));
        for (var i = 0; i < substeps; i++) MoveEffector(delta / substeps);
        Step++;
    }

    private static double Finite(float v) => float.IsFinite(v) ? v : 0;

    private void CloseGripper()
    {
        _closed = true;
        var best = -1;
        var bestDistance = Physics.GraspRadius;
        for (var i = 0; i < _objects.Length; i++)
        {
            var d = Vec2.Distance(_objects[i], _effector);
            if (d <= bestDistance) (best, bestDistance) = (i, d);
        }
        if (best >= 0)
        {
            _held = best;
            if (best == Scene.Task.TargetObject) _targetEverGrasped = true;
            // The fingers centre the object between them as they close.
            _objects[best] = _effector;
        }
        else
        {
            // Lowered onto the table: anything under the pusher is shoved aside.
            PushOut();
        }
    }

    private void OpenGripper()
    {
        _closed = false;
        if (_held < 0) return;
        var released = _held;
        _held = -1;
        SeparateObjects(released);
    }

    private void MoveEffector(Vec2 delta)
    {
        _effector = (_effector + delta).Clamp(Physics.MinCoord, Physics.MaxCoord);
        if (_held >= 0)
        {
            _objects[_held] = _effector;
            return;
        }
        if (_closed) PushOut();
    }

    /// <summary>The lowered, empty gripper moves every object it overlaps out along the contact normal.</summary>
    private void PushOut()
    {
        const double contact = Physics.EffectorRadius + Physics.ObjectRadius;
        for (var i = 0; i < _objects.Length; i++)
        {
            var rel = _objects[i] - _effector;
            var d = rel.Length;
            if (d >= contact) continue;
            var normal = d < 1e-9 ? new Vec2(0, -1) : rel / d;
            var pushed = (_effector + normal * contact).Clamp(Physics.MinCoord, Physics.MaxCoord);
            _objects[i] = pushed;
            // At the table's edge the object cannot give way, so the pusher stops against it.
            var back = _effector - pushed;
            if (back.Length < contact) _effector = (pushed + back.Normalized() * contact).Clamp(Physics.MinCoord, Physics.MaxCoord);
            SeparateObjects(i);
        }
    }

    /// <summary>Resolves overlaps between objects on the table, moving the others away from <paramref name="mover"/>.</summary>
    private void SeparateObjects(int mover)
    {
        const double minGap = 2 * Physics.ObjectRadius;
        for (var iteration = 0; iteration < 4; iteration++)
        {
            var moved = false;
            for (var a = 0; a < _objects.Length; a++)
            {
                if (a == _held) continue;
                for (var b = a + 1; b < _objects.Length; b++)
                {
                    if (b == _held) continue;
                    var rel = _objects[b] - _objects[a];
                    var d = rel.Length;
                    if (d >= minGap - 1e-9) continue;
                    var normal = d < 1e-9 ? new Vec2(1, 0) : rel / d;
                    var overlap = minGap - d;
                    // The object that was just moved holds its place; the other one yields.
                    if (a == mover) _objects[b] = (_objects[b] + normal * overlap).Clamp(Physics.MinCoord, Physics.MaxCoord);
                    else if (b == mover) _objects[a] = (_objects[a] - normal * overlap).Clamp(Physics.MinCoord, Physics.MaxCoord);
                    else
                    {
                        _objects[a] = (_objects[a] - normal * (overlap / 2)).Clamp(Physics.MinCoord, Physics.MaxCoord);
                        _objects[b] = (_objects[b] + normal * (overlap / 2)).Clamp(Physics.MinCoord, Physics.MaxCoord);
                    }
                    moved = true;
                }
            }
            if (!moved) return;
        }
    }
}
