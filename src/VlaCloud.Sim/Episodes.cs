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
    public static RecordedEpisode RecordExpert(SceneSpec scene, SimEmbodiment embodiment, Renderer renderer)
    {
        var world = new TabletopWorld(scene);
        var frames = new List<RecordedFrame>();
        while (!world.IsSuccess && world.Step < embodiment.MaxEpisodeSteps)
        {
            var state = world.Snapshot();
            var action = ScriptedExpert.NextAction(state);
            frames.Add(new RecordedFrame(world.State(), action, renderer.RenderAll(state, embodiment), state));
            world.Apply(action);
        }
        var final = world.Snapshot();
        var path = frames.Select(f => f.World.Effector).Append(final.Effector).ToArray();
        var size = embodiment.Cameras[0].Width;
        var labels = frames.Select((f, t) => SpatialLabels.ForFrame(f.World, path, t, size)).ToArray();
        return new RecordedEpisode(scene, frames, final, final.IsSuccess, labels);
    }
}
