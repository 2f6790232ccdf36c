using TorchSharp;
using VlaCloud.Policy.InternVla;
using VlaCloud.Policy.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy;

/// <summary>
/// One family's model and the composition that turns the policy's plain data into its forward passes: the training
/// losses, the start of sampling, spatial answers, the parameter groups and the layers a new embodiment layout
/// retrains. <see cref="VlaPolicy"/> keeps what every family shares (config, normalisation statistics, tokenizer file,
/// device and dtype, checkpoint files) and hands each verb to its family here, so the verbs do not branch on the family.
/// </summary>
internal abstract class PolicyModel(VlaPolicy policy) : IDisposable
{
    /// <summary>The policy whose config, statistics, device and dtype the family reads.</summary>
    protected VlaPolicy Policy { get; } = policy;
    protected PolicyConfig Config => Policy.Config;
    protected Device Device => Policy.Device;
    protected ScalarType DType => Policy.DType;
    protected NormalizationStats StatsFor(string? embodiment) => Policy.StatsFor(embodiment);
    protected Tensor? States(IReadOnlyList<Observation> observations) => Policy.States(observations);
    protected void CheckCameras(IReadOnlyList<IReadOnlyList<CameraImage>> perSample) => Policy.CheckCameras(perSample);
    protected static Tensor Noise(long seed, long h, long a) => VlaPolicy.Noise(seed, h, a);

    /// <summary>
    /// The statistics of training sample <paramref name="index"/>'s embodiment, after checking that its chunk has the
    /// model's <paramref name="horizon"/> steps of the embodiment's action size and a validity flag per step.
    /// </summary>
    protected NormalizationStats CheckedStats(int index, ActionSample sample, int horizon)
    {
        var stats = StatsFor(sample.Observation.Embodiment);
        if (sample.Actions.Horizon != horizon || sample.Actions.ActionDim != stats.ActionDim)
            throw new ArgumentException($"sample {index}: actions are [{sample.Actions.Horizon}, {sample.Actions.ActionDim}], expected [{horizon}, {stats.ActionDim}]");
        if (sample.Valid is { } valid && valid.Length != horizon)
            throw new ArgumentException($"sample {index}: Valid has {valid.Length} entries, expected {horizon}");
        return stats;
    }

    /// <summary>The family's model: the weights, named as in <c>model.safetensors</c>.</summary>
    public abstract nn.Module Module { get; }

    /// <summary>The family of <paramref name="module"/>, bound to <paramref name="policy"/>.</summary>
    public static PolicyModel For(VlaPolicy policy, nn.Module module) => module switch
    {
        St4VlaModel model => new St4VlaPolicyModel(policy, model),
        InternVlaM1 m1 => new InternVlaM1PolicyModel(policy, m1),
        _ => throw new ArgumentException($"{module.GetType().Name} is not a policy family's model", nameof(module)),
    };

    /// <summary>
    /// <see cref="VlaPolicy.ComputeLoss"/>: the family's action loss and, unless vanilla, its spatial loss, in training
    /// mode, summed as action + SpatialLossWeight × spatial.
    /// </summary>
    public PolicyLoss ComputeLoss(TrainingBatch batch)
    {
        Module.train();
        var action = batch.Actions.Count > 0 ? ActionLoss(batch.Actions) : null;
        var spatial = batch.Spatial.Count > 0 && !Config.Vanilla ? SpatialLoss(batch.Spatial) : null;
        if (action is null && spatial is null) throw new ArgumentException(Config.Vanilla && batch.Spatial.Count > 0
            ? "a vanilla policy trains on action samples only and this batch has none"
            : "the batch is empty");
        var total = (action, spatial) switch
        {
            ({ } a, { } s) => a + s * Config.SpatialLossWeight,
            ({ } a, null) => a.alias(),
            _ => spatial! * Config.SpatialLossWeight,
        };
        return new PolicyLoss(total, action, spatial);
    }

    /// <summary>The action loss of a non-empty list of samples, a float32 scalar in the caller's dispose scope.</summary>
    protected abstract Tensor ActionLoss(IReadOnlyList<ActionSample> samples);

    /// <summary>The spatial answers' cross-entropy of a non-empty list of samples, a float32 scalar in the caller's dispose scope.</summary>
    protected abstract Tensor SpatialLoss(IReadOnlyList<SpatialSample> samples);

    /// <summary><see cref="VlaPolicy.StartSampling"/> for a non-empty batch with one seed per observation.</summary>
    public abstract ActionSampling StartSampling(IReadOnlyList<Observation> observations, IReadOnlyList<long> seeds, int? steps,
        IReadOnlyList<PointGuide?>? guides, double? cfgScale);

    /// <summary><see cref="VlaPolicy.GenerateSpatial"/> for a non-empty batch.</summary>
    public abstract SpatialPrediction[] GenerateSpatial(IReadOnlyList<Observation> observations, SpatialKind kind);

    /// <summary><see cref="VlaPolicy.GeneratePointGuides"/>; only a family with point guidance has them.</summary>
    public virtual PointGuide[] GeneratePointGuides(IReadOnlyList<Observation> observations) =>
        throw new InvalidOperationException($"an {Config.Family} policy has no ST4VLA model");

    /// <summary><see cref="VlaPolicy.ParameterGroups"/>.</summary>
    public abstract PolicyParameterGroups ParameterGroups();

    /// <summary>The modules whose parameters' shapes follow the action size and/or the state size (<see cref="VlaPolicy.WithNewHead"/>).</summary>
    public abstract IEnumerable<nn.Module> LayoutModules(bool action, bool state);

    /// <summary>Frees the weights.</summary>
    public void Dispose() => Module.Dispose();
}
