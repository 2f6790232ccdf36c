using VlaCloud.Actions;
using VlaCloud.Policy;
using VlaCloud.Sim;

namespace VlaCloud.Training;

/// <summary>
/// Drives the simulator with a <see cref="VlaPolicy"/>: every environment that needs actions is
/// served by one batched <see cref="VlaPolicy.SampleActions(IReadOnlyList{Observation}, IReadOnlyList{long}, int?, IReadOnlyList{PointGuide?}, double?, IReadOnlyList{string?})"/>
/// call. The evaluator executes the first <see cref="EvaluationOptions.ExecuteSteps"/> actions of each chunk.
/// It lives here rather than in VlaCloud.Sim so the simulator (used by the CLI's dataset commands and the
/// API's sim embodiment) needs no TorchSharp, while training and evaluation of checkpoints sit together.
/// </summary>
public sealed class PolicyController : IActionController
{
    private readonly VlaPolicy policy;
    private readonly SimEmbodiment embodiment;
    private readonly int? inferenceSteps;
    private readonly long seed;

    /// <summary>A controller over <paramref name="policy"/> for <paramref name="embodiment"/>; noise per call from <paramref name="seed"/>, episode and step.</summary>
    public PolicyController(VlaPolicy policy, SimEmbodiment embodiment, int? inferenceSteps = null, long seed = 0)
    {
        if (!policy.Normalization.ContainsKey(embodiment.Name))
            throw new ArgumentException($"the policy has no statistics for embodiment '{embodiment.Name}'; it knows {string.Join(", ", policy.Normalization.Keys)}");
        this.policy = policy;
        this.embodiment = embodiment;
        this.inferenceSteps = inferenceSteps;
        this.seed = seed;
    }

    /// <summary>Forward passes made (one per <see cref="Act"/> call).</summary>
    public int Calls { get; private set; }

    /// <inheritdoc />
    public IReadOnlyList<ActionChunk> Act(IReadOnlyList<SimObservation> batch)
    {
        var observations = batch.Select(ToObservation).ToArray();
        return Sample(observations, [.. batch.Select(o => (o.EpisodeId, o.Step))]);
    }

    /// <summary>Actions per chunk the policy predicts (its config's chunk length).</summary>
    public int ChunkLength => policy.Config.ChunkLength;

    /// <summary>
    /// The chunks the policy samples for observations already in the model's form, each with the noise of its episode
    /// and step as in closed loop: what <see cref="Act"/> does after <see cref="ToObservation"/>, for callers that hold
    /// recorded frames (the open-loop direction probe). Counts as one call.
    /// </summary>
    public IReadOnlyList<ActionChunk> Sample(IReadOnlyList<Observation> observations, IReadOnlyList<(long EpisodeId, int Step)> keys)
    {
        if (keys.Count != observations.Count) throw new ArgumentException($"{observations.Count} observations but {keys.Count} episode and step keys");
        var seeds = keys.Select(k => (long)BatchSampler.StepSeed(seed, k.EpisodeId, k.Step)).ToArray();
        // The policy's chunks are the simulator's: no conversion between them.
        var chunks = policy.SampleActions(observations, seeds, inferenceSteps);
        Calls++;
        return chunks;
    }

    /// <summary>The model's view of a simulator observation: cameras in the embodiment's order, state, instruction.</summary>
    public Observation ToObservation(SimObservation o) => new(
        [.. embodiment.Cameras.Select(c => new CameraImage(
            o.Images.TryGetValue(c.Name, out var rgb) ? rgb : throw new ArgumentException($"observation lacks camera '{c.Name}'"), c.Width, c.Height))],
        o.Instruction, o.State, embodiment.Name);
}
