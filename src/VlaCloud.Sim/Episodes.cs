namespace VlaCloud.Sim;

/// <summary>One recorded step: what was observed and what the controller did.</summary>
/// <param name="State">Proprioceptive state before the action.</param>
/// <param name="Action">The action taken.</param>
/// <param name="Images">RGB HWC images by camera name, before the action.</param>
/// <param name="World">Ground truth before the action.</param>
public sealed record RecordedFrame(float[] State, float[] Action, IReadOnlyDictionary<string, byte[]> Images, WorldState World);

/// <summary>A finished episode with its frames, the final state and per-frame spatial labels.</summary>
/// <param name="Scene">The initial scene.</param>
/// <param name="Frames">One frame per step taken.</param>
/// <param name="Final">State after the last action.</param>
/// <param name="Success">Whether the goal held at the end.</param>
/// <param name="Labels">Spatial labels per frame (main camera pixels).</param>
public sealed record RecordedEpisode(SceneSpec Scene, IReadOnlyList<RecordedFrame> Frames, WorldState Final, bool Success, IReadOnlyList<FrameLabels> Labels)
{
    /// <summary>
    /// The episode cut to its first <paramref name="count"/> frames and their labels. <see cref="Success"/> and
    /// <see cref="Final"/> still describe the whole rollout, which the labels' trajectories were taken from.
    /// </summary>
    public RecordedEpisode FirstFrames(int count) =>
        count >= Frames.Count ? this : this with { Frames = [.. Frames.Take(count)], Labels = [.. Labels.Take(count)] };
}

/// <summary>Runs single episodes to the end, recording them (dataset generation).</summary>
public static class EpisodeRecorder
{
    /// <summary>
    /// Runs <paramref name="scene"/> with the scripted expert until success or the step limit, rendering
    /// every camera of <paramref name="embodiment"/> at each step.
    /// </summary>
    public static RecordedEpisode RecordExpert(SceneSpec scene, SimEmbodiment embodiment, Renderer renderer, ExpertNoise? noise = null)
    {
        var world = new TabletopWorld(scene);
        var frames = new List<RecordedFrame>();
        var rng = new Random(scene.Seed);
        while (!world.IsSuccess && world.Step < embodiment.MaxEpisodeSteps)
        {
            var state = world.Snapshot();
            var action = ScriptedExpert.NextAction(state);
            frames.Add(new RecordedFrame(world.State(), action, renderer.RenderAll(state, embodiment), state));
            world.Apply(noise is null ? action : noise.Perturb(action, rng));
        }
        var final = world.Snapshot();
        var path = frames.Select(f => f.World.Effector).Append(final.Effector).ToArray();
        var size = embodiment.Cameras[0].Width;
        var labels = frames.Select((f, t) => SpatialLabels.ForFrame(f.World, path, t, size)).ToArray();
        return new RecordedEpisode(scene, frames, final, final.IsSuccess, labels);
    }
}

/// <summary>
/// Records the scripted expert on many scenes at once (<see cref="EpisodeRecorder.RecordExpert"/> in parallel), each
/// worker thread with a renderer of its own that it keeps from one call to the next.
/// </summary>
/// <param name="embodiment">The cameras every episode is rendered with.</param>
public sealed class ParallelExpertRecorder(SimEmbodiment embodiment) : IDisposable
{
    private readonly ThreadLocal<Renderer> renderers = new(() => new Renderer(embodiment.Cameras[0].Width), trackAllValues: true);

    /// <summary>
    /// Records <paramref name="scenes"/> in parallel and returns what <paramref name="keep"/> makes of each episode, in
    /// the scenes' order. <paramref name="keep"/> runs on the recording thread as soon as its episode ends, so the
    /// episode's rendered frames need not outlive it.
    /// </summary>
    public T[] Record<T>(IReadOnlyList<SceneSpec> scenes, Func<RecordedEpisode, T> keep, ExpertNoise? noise = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var kept = new T[scenes.Count];
        Parallel.For(0, scenes.Count, new ParallelOptions { CancellationToken = cancellationToken },
            i => kept[i] = keep(EpisodeRecorder.RecordExpert(scenes[i], embodiment, renderers.Value!, noise)));
        return kept;
    }

    private bool disposed;

    /// <summary>Disposes every worker's renderer.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        foreach (var renderer in renderers.Values) renderer.Dispose();
        renderers.Dispose();
    }
}

/// <summary>
/// Noise injected into the actions the expert <em>executes</em> while its clean actions are recorded (DART, Laskey
/// et al. 2017): the demonstrations then visit the states a learned policy drifts into (off course, the gripper
/// closed on nothing) and show the way back. Without it a policy that closed the gripper early never saw it reopen.
/// </summary>
/// <param name="PositionStd">Standard deviation of the noise added to each coordinate of a full-length effector move, in table units (a move is at most <see cref="Physics.MaxStep"/>); shorter moves get proportionally less.</param>
/// <param name="GripperFlipProbability">Chance per step that the executed gripper command is the opposite of the expert's.</param>
public sealed record ExpertNoise(double PositionStd, double GripperFlipProbability)
{
    /// <summary>The position noise's standard deviation (never negative).</summary>
    public double PositionStd { get; } = PositionStd >= 0 ? PositionStd
        : throw new ArgumentOutOfRangeException(nameof(PositionStd), PositionStd, "the position noise must not be negative");

    /// <summary>The gripper flip probability (within [0, 1]).</summary>
    public double GripperFlipProbability { get; } = GripperFlipProbability is >= 0 and <= 1 ? GripperFlipProbability
        : throw new ArgumentOutOfRangeException(nameof(GripperFlipProbability), GripperFlipProbability, "the flip probability must be within [0, 1]");

    /// <summary>The executed action: <paramref name="action"/> with noise drawn from <paramref name="rng"/>.</summary>
    public float[] Perturb(float[] action, Random rng)
    {
        var executed = (float[])action.Clone();
        // Scaled by the move's length: the expert's final aligning moves are tiny, and full-size noise on them
        // kept it from reaching grasp tolerance (at a std of 0.015, 100 episodes took over 10 minutes to collect).
        var scale = PositionStd * Math.Min(1, Math.Sqrt(action[0] * action[0] + action[1] * action[1]) / Physics.MaxStep);
        for (var d = 0; d < 2; d++) executed[d] += (float)(scale * Gaussian(rng));
        if (rng.NextDouble() < GripperFlipProbability) executed[2] = executed[2] > 0.5f ? 0f : 1f;
        return executed;
    }

    private static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
