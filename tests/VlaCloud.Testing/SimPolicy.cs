using System.Text.Json;
using VlaCloud.Contracts;
using VlaCloud.Policy;
using VlaCloud.Sim;
using VlaCloud.Actions;

namespace VlaCloud.Testing;

/// <summary>
/// A real tiny policy for an embodiment shaped like the simulator's robot (3 actions, 3 state values, main and
/// wrist cameras at 64×64), as its single-file checkpoint, plus rendered simulator frames to act on.
/// </summary>
public static class SimPolicy
{
    /// <summary>The embodiment, under a unique name.</summary>
    public static CreateEmbodimentRequest Embodiment(string name)
    {
        var robot = SimEmbodiment.Tabletop;
        return new CreateEmbodimentRequest(name, robot.ActionDim, robot.StateDim, "delta_xy+gripper",
            [.. robot.Cameras.Select(c => new CameraDto(c.Name, c.Width, c.Height))], robot.ControlHz, robot.ChunkLength, [.. robot.ActionNames], [.. robot.StateNames]);
    }

    /// <summary>The policy (untrained, seeded) for <paramref name="embodiment"/>.</summary>
    public static VlaPolicy Create(string embodiment, int seed = 7)
    {
        var stats = new Dictionary<string, NormalizationStats> { [embodiment] = TestPolicies.IdentityStats(3, 3) };
        return VlaPolicy.Create(PolicyConfig.Tiny, stats, seed: seed);
    }

    /// <summary>The policy as a tar (what <c>checkpoints put</c> uploads).</summary>
    public static byte[] Tar(VlaPolicy policy)
    {
        using var tar = new MemoryStream();
        policy.SaveTar(tar);
        return tar.ToArray();
    }

    /// <summary>The registration body for a stored tar, with the metadata read from the policy.</summary>
    public static RegisterCheckpointRequest Registration(VlaPolicy policy, string model, string embodiment, string sha256) =>
        new(model, embodiment, sha256,
            JsonDocument.Parse(policy.Config.ToJson()).RootElement.Clone(),
            JsonDocument.Parse(NormalizationStats.ToJson(policy.Normalization)).RootElement.Clone());

    /// <summary>Both cameras' first frame of a simulator episode, raw RGB.</summary>
    public static IReadOnlyDictionary<string, byte[]> Frames(int episode = 0)
    {
        var scene = SceneGenerator.ForEpisode(SimSplits.Seen, episode, TaskKind.PickPlace);
        using var renderer = new Renderer(64);
        return renderer.RenderAll(new TabletopWorld(scene).Snapshot(), SimEmbodiment.Tabletop);
    }

    /// <summary>The observation of <see cref="Frames"/> with raw images.</summary>
    public static ObservationInput Observation(int episode = 0) => new(
        Frames(episode).ToDictionary(f => f.Key, f => new ImageInput("raw", f.Value, [64, 64, 3])),
        [0.5f, 0.5f, 1f], "pick the red cube and place it in the blue bowl");

    /// <summary>What the policy computes for <see cref="Observation"/> alone, outside the service.</summary>
    public static ActionChunk Expected(VlaPolicy policy, string embodiment, long seed, int steps, int episode = 0)
    {
        var input = Observation(episode);
        var images = SimEmbodiment.Tabletop.Cameras.Select(c => new CameraImage(input.Images[c.Name].Data, 64, 64)).ToList();
        return policy.SampleActions(new VlaCloud.Policy.Observation(images, input.Instruction, input.State, embodiment), seed, steps);
    }
}
