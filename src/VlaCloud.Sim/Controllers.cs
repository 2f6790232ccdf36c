using VlaCloud.Actions;

namespace VlaCloud.Sim;

/// <summary>What a controller sees at one step of one episode.</summary>
/// <param name="EpisodeId">Unique per episode within an evaluation; a new id means a new episode (reset any history).</param>
/// <param name="Step">Steps taken so far in this episode.</param>
/// <param name="Instruction">The task instruction.</param>
/// <param name="State">Proprioceptive state, laid out as <see cref="SimEmbodiment.StateNames"/>.</param>
/// <param name="Images">RGB uint8 HWC images by camera name (<see cref="CameraSpec.Name"/>); empty when the controller asked for none.</param>
/// <param name="Privileged">
/// Ground-truth world state. Only scripted controllers may read it; a learned policy must act from
/// <see cref="Images"/>, <see cref="State"/> and <see cref="Instruction"/> alone (the one exception is a diagnostic:
/// oracle guides, the labelled target and destination handed to a point-guided policy in place of its own points).
/// </param>
public sealed record SimObservation(
    long EpisodeId,
    int Step,
    string Instruction,
    float[] State,
    IReadOnlyDictionary<string, byte[]> Images,
    WorldState Privileged);

/// <summary>
/// A policy driving the simulator, batched: one call receives the observations of every environment
/// that needs new actions and returns one action chunk per observation (the expert is one such
/// controller, a model another, batching its forward pass across environments).
/// </summary>
public interface IActionController
{
    /// <summary>Whether observations must carry rendered images (rendering costs most of a step).</summary>
    bool NeedsImages => true;

    /// <summary>
    /// Returns, for each observation in order, an action chunk of <c>H ≥ 1</c> actions of the embodiment's dimension.
    /// The evaluator executes up to its configured number of the chunk's actions before asking again.
    /// </summary>
    IReadOnlyList<ActionChunk> Act(IReadOnlyList<SimObservation> batch);
}

/// <summary>
/// The scripted expert: a state machine over ground truth. Pick-and-place: open, fly to the target,
/// close, carry to the destination's centre, open. Push: fly (raised) to a stand-off point behind
/// the target on the line to the goal, lower, and push along that line, re-aiming every step.
/// Motions go straight at full speed (<see cref="Physics.MaxStep"/>) and land exactly on their goal,
/// so actions are piecewise constant and easy to predict in chunks; a goal within <see cref="ArrivalTolerance"/>
/// counts as reached.
/// </summary>
public sealed class ScriptedExpert : IActionController
{
    /// <summary>
    /// Distance (table units, just under one pixel of a 64-pixel camera) within which a goal counts as reached: the
    /// expert closes, lowers or releases there instead of first moving the rest of the way. The labels must be a
    /// function a policy can imitate. When the expert only closed on exact arrival (1e-6), every state a few
    /// millimetres from an object was labelled "creep closer, keep open", and a learned policy, which never lands
    /// exactly, crept forever: even an MLP given the exact target and destination positions scored 0 / 40
    /// (README, experiment, sixth round). The grasp itself reaches 3× further (<see cref="Physics.GraspRadius"/>).
    /// </summary>
    public const double ArrivalTolerance = 0.015;

    /// <inheritdoc />
    public bool NeedsImages => false;

    /// <inheritdoc />
    public IReadOnlyList<ActionChunk> Act(IReadOnlyList<SimObservation> batch) =>
        [.. batch.Select(o => ActionChunk.FromRows([NextAction(o.Privileged)]))];

    /// <summary>The expert's action in state <paramref name="s"/>: <c>[dx, dy, gripper]</c>.</summary>
    public static float[] NextAction(WorldState s) =>
        s.Scene.Task.Kind == TaskKind.PickPlace ? PickPlace(s) : Push(s);

    private static float[] PickPlace(WorldState s)
    {
        var task = s.Scene.Task;
        if (s.HeldObject == task.TargetObject)
        {
            var goal = s.Scene.TargetDestination.Center;
            return Vec2.Distance(s.Effector, goal) <= ArrivalTolerance ? Action(default, close: false) : MoveTo(s.Effector, goal, close: true);
        }
        // Holding nothing or the wrong thing: open first.
        if (s.GripperClosed) return Action(default, close: false);
        var target = s.ObjectPositions[task.TargetObject];
        return Vec2.Distance(s.Effector, target) <= ArrivalTolerance ? Action(default, close: true) : MoveTo(s.Effector, target, close: false);
    }

    private static float[] Push(WorldState s)
    {
        const double contact = Physics.EffectorRadius + Physics.ObjectRadius;
        if (s.HeldObject >= 0) return Action(default, close: false);
        var target = s.ObjectPositions[s.Scene.Task.TargetObject];
        var goal = s.Scene.TargetDestination.Center;
        var direction = (goal - target).Normalized();
        var relative = s.Effector - target;
        var along = Vec2.Dot(relative, direction);
        var lateral = Math.Abs(relative.X * direction.Y - relative.Y * direction.X);
        // Wider than the arrival tolerance, so a pusher lowered anywhere within it counts as behind the object.
        var behind = along < 0 && lateral < 2 * ArrivalTolerance && relative.Length < SceneGenerator.PushStandoff + 2 * ArrivalTolerance;
        if (s.GripperClosed && behind)
        {
            // Aim the pusher at the contact point behind the object, advanced by what is left to go.
            var remaining = Vec2.Distance(target, goal);
            var aim = target - direction * contact + direction * Math.Min(Physics.MaxStep, remaining);
            return MoveTo(s.Effector, aim, close: true);
        }
        if (s.GripperClosed) return Action(default, close: false);
        var standoff = (target - direction * SceneGenerator.PushStandoff).Clamp(Physics.MinCoord, Physics.MaxCoord);
        return Vec2.Distance(s.Effector, standoff) <= ArrivalTolerance ? Action(default, close: true) : MoveTo(s.Effector, standoff, close: false);
    }

    private static float[] MoveTo(Vec2 from, Vec2 to, bool close)
    {
        var delta = to - from;
        // Scale so the larger axis hits the per-axis limit: straight lines, exact arrival.
        var largest = Math.Max(Math.Abs(delta.X), Math.Abs(delta.Y));
        if (largest > Physics.MaxStep) delta *= Physics.MaxStep / largest;
        return Action(delta, close);
    }

    private static float[] Action(Vec2 delta, bool close) => [(float)delta.X, (float)delta.Y, close ? 1f : 0f];
}
