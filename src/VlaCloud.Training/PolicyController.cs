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

    /// <summary>
    /// A controller over <paramref name="policy"/> for <paramref name="embodiment"/>; noise per call from <paramref name="seed"/>, episode and step.
    /// With <paramref name="oracleGuides"/> a point-guided policy acts on the simulator's labels instead of System 2's points
    /// (<see cref="OracleGuides"/>); a policy without point guidance is refused, it has nothing to read them with.
    /// </summary>
    public PolicyController(VlaPolicy policy, SimEmbodiment embodiment, int? inferenceSteps = null, long seed = 0, bool oracleGuides = false)
    {
        if (!policy.Normalization.ContainsKey(embodiment.Name))
            throw new ArgumentException($"the policy has no statistics for embodiment '{embodiment.Name}'; it knows {string.Join(", ", policy.Normalization.Keys)}");
        if (oracleGuides && !policy.Config.PointGuidance)
            throw new ArgumentException("oracle guides replace System 2's points in a point-guided policy, and this policy has no point guidance (it was not trained with --point-guidance)");
        this.policy = policy;
        this.embodiment = embodiment;
        this.inferenceSteps = inferenceSteps;
        this.seed = seed;
        OracleGuides = oracleGuides;
    }

    /// <summary>Forward passes made (one per <see cref="Act"/> call).</summary>
    public int Calls { get; private set; }

    /// <summary>
    /// Whether the policy acts on the simulator's labelled target and destination centres (<see cref="OracleGuide"/> of each
    /// observation's world in <see cref="Act"/>; the frames' labels in <see cref="DirectionProbe.Run"/>) instead of asking
    /// System 2. A diagnostic of how much System 2's pointing costs: it reads ground truth no deployed policy has.
    /// </summary>
    public bool OracleGuides { get; }

    /// <inheritdoc />
    public IReadOnlyList<ActionChunk> Act(IReadOnlyList<SimObservation> batch)
    {
        var observations = batch.Select(ToObservation).ToArray();
        // The one place a learned policy reads the privileged world state, and only when asked to (a diagnostic).
        var size = embodiment.Cameras[0].Width;
        return Sample(observations, [.. batch.Select(o => (o.EpisodeId, o.Step))], OracleGuides ? [.. batch.Select(o => OracleGuide(o.Privileged, size))] : null);
    }

    /// <summary>
    /// The guide the simulator's labels give a frame in state <paramref name="state"/>, seen by a first camera of
    /// <paramref name="size"/> pixels: the labelled target and destination centres (<see cref="SpatialLabels.Objects"/>),
    /// the same pixels a generated dataset's annotations hold and point-guided training teacher-forces.
    /// </summary>
    public static PointGuide OracleGuide(WorldState state, int size)
    {
        var (target, destination) = SpatialLabels.Objects(state, size);
        return Guide(target, destination);
    }

    /// <summary>A labelled target and destination as the guide a point-guided policy reads (their centre pixels).</summary>
    internal static PointGuide Guide(SpatialTarget target, SpatialTarget destination) =>
        new([target.Point[0], target.Point[1]], [destination.Point[0], destination.Point[1]]);

    /// <summary>Actions per chunk the policy predicts (its config's chunk length).</summary>
    public int ChunkLength => policy.Config.ChunkLength;

    /// <summary>
    /// The chunks the policy samples for observations already in the model's form, each with the noise of its episode
    /// and step as in closed loop: what <see cref="Act"/> does after <see cref="ToObservation"/>, for callers that hold
    /// recorded frames (the open-loop direction probe). A point-guided policy reads <paramref name="guides"/> when given
    /// (one per observation) and otherwise asks System 2. Counts as one call.
    /// </summary>
    public IReadOnlyList<ActionChunk> Sample(IReadOnlyList<Observation> observations, IReadOnlyList<(long EpisodeId, int Step)> keys, IReadOnlyList<PointGuide?>? guides = null)
    {
        if (keys.Count != observations.Count) throw new ArgumentException($"{observations.Count} observations but {keys.Count} episode and step keys");
        var seeds = keys.Select(k => (long)BatchSampler.StepSeed(seed, k.EpisodeId, k.Step)).ToArray();
        // The policy's chunks are the simulator's: no conversion between them.
        var chunks = policy.SampleActions(observations, seeds, inferenceSteps, guides);
        Calls++;
        return chunks;
    }

    /// <summary>The model's view of a simulator observation: cameras in the embodiment's order, state, instruction.</summary>
    public Observation ToObservation(SimObservation o) => new(
        [.. embodiment.Cameras.Select(c => new CameraImage(
            o.Images.TryGetValue(c.Name, out var rgb) ? rgb : throw new ArgumentException($"observation lacks camera '{c.Name}'"), c.Width, c.Height))],
        o.Instruction, o.State, embodiment.Name);
}
