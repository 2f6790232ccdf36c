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

    /// <summary>
    /// (B, 6) point-token features, the same for every family: each guide's target and destination scaled from pixels of the observation's first
    /// image to [−1, 1], then a mask per point (1 known, 0 unknown); null when the config has no point guidance.
    /// </summary>
    protected Tensor? PointFeatures(IReadOnlyList<Observation> observations, IReadOnlyList<PointGuide?> guides)
    {
        if (!Config.PointGuidance) return null;
        if (guides.Count != observations.Count) throw new ArgumentException($"{observations.Count} observations but {guides.Count} point guides");
        var data = new float[observations.Count, PolicyConfig.PointGuideFeatures];
        for (var i = 0; i < observations.Count; i++)
        {
            if (guides[i] is not { } guide) continue;
            guide.Validate();
            var first = observations[i].Images[0];
            foreach (var (point, slot) in new[] { (guide.Target, 0), (guide.Destination, 1) })
            {
                if (point is null) continue;
                data[i, 2 * slot] = point[0] / first.Width * 2 - 1;
                data[i, 2 * slot + 1] = point[1] / first.Height * 2 - 1;
                data[i, 4 + slot] = 1f;
            }
        }
        return tensor(data, device: Device).to(DType);
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

    /// <summary>
    /// <see cref="VlaPolicy.StartSampling"/> for a non-empty batch with one seed per observation and, when given, one
    /// session id (or null) per observation whose prefix may come from and goes to the policy's session cache.
    /// </summary>
    public abstract ActionSampling StartSampling(IReadOnlyList<Observation> observations, IReadOnlyList<long> seeds, int? steps,
        IReadOnlyList<PointGuide?>? guides, double? cfgScale, IReadOnlyList<string?>? sessions = null);

    /// <summary>
    /// The batch's prefix (B, …), one row per observation: a row whose session holds the prefix of the same observation
    /// comes from the cache (<see cref="SessionPrefixCache"/>); <paramref name="compute"/> runs once on the rest (or on the
    /// whole batch when nothing hit, the same call as without the cache) and their rows of a session are kept for next time.
    /// </summary>
    protected Tensor CachedPrefix(IReadOnlyList<Observation> observations, IReadOnlyList<string?>? sessions, Func<IReadOnlyList<Observation>, Tensor> compute)
    {
        var cache = Policy.Prefixes;
        if (sessions is null || cache.Capacity == 0 || sessions.All(s => s is null)) return compute(observations);
        // Read before anything is computed: a prefix computed across an invalidation is not stored (SessionPrefixCache.Put).
        var generation = cache.Generation;
        var n = observations.Count;
        var keys = new byte[]?[n];
        var hits = new Tensor?[n];
        for (var i = 0; i < n; i++)
        {
            if (sessions[i] is not { } session) continue;
            keys[i] = SessionPrefixCache.Key(observations[i]);
            if (cache.TryGet(session, keys[i]!, out var prefix)) hits[i] = prefix;
        }
        var missing = Enumerable.Range(0, n).Where(i => hits[i] is null).ToArray();
        var computed = missing.Length == 0 ? null : compute(missing.Length == n ? observations : [.. missing.Select(i => observations[i])]);
        for (var j = 0; j < missing.Length; j++)
            if (sessions[missing[j]] is { } session) cache.Put(session, keys[missing[j]]!, computed![j..(j + 1)], generation);
        if (missing.Length == n) return computed!;
        var rows = new Tensor[n];
        for (int i = 0, j = 0; i < n; i++) rows[i] = hits[i] ?? computed![(j++)..j];
        return cat(rows, 0);
    }

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
