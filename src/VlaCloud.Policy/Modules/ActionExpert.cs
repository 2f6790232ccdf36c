using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Modules;

/// <summary>DiT block: adaLN-zero self-attention, cross-attention to the conditioning tokens, adaLN-zero MLP.</summary>
internal sealed class DitBlock : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    private readonly LayerNorm norm1, norm2, norm3;
    private readonly Attention self, cross;
    private readonly GeluMlp mlp;
    private readonly Linear modulation;

    public DitBlock(string name, long dim, long heads) : base(name)
    {
        norm1 = nn.LayerNorm(dim, elementwise_affine: false);
        self = new Attention("self", dim, heads);
        norm2 = nn.LayerNorm(dim);
        cross = new Attention("cross", dim, heads);
        norm3 = nn.LayerNorm(dim, elementwise_affine: false);
        mlp = new GeluMlp("mlp", dim, 4 * dim);
        modulation = nn.Linear(dim, 6 * dim);
        RegisterComponents();
        // adaLN-zero: every block starts as the identity.
        nn.init.zeros_(modulation.weight!);
        nn.init.zeros_(modulation.bias!);
    }

    /// <param name="x">(B, L, D) state + action tokens.</param>
    /// <param name="time">(B, D) flow-time embedding.</param>
    /// <param name="cond">(B, Q, D) conditioning tokens from the bridge.</param>
    public override Tensor forward(Tensor x, Tensor time, Tensor cond)
    {
        using var scope = NewDisposeScope();
        var m = Modulation(time).unsqueeze(2).unbind(1);                               // 6 × (B, 1, D), scales as 1 + scale
        return Step(x, m, cross.KeysValues(cond)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// (N, D) time embeddings → (N, 6, D) shift/scale/gate rows in the order <see cref="Step"/> reads them, the two scales
    /// already as <c>1 + scale</c>: computed for all denoising steps at once when sampling.
    /// </summary>
    public Tensor Modulation(Tensor time)
    {
        using var scope = NewDisposeScope();
        var m = modulation.call(nn.functional.silu(time)).view(time.shape[0], 6, time.shape[1]); // (N, 6, D)
        m.narrow(-2, 1, 1).add_(1);
        m.narrow(-2, 4, 1).add_(1);
        return m.MoveToOuterDisposeScope();
    }

    /// <summary>The cross-attention's keys and values of the conditioning tokens, the same for every denoising step.</summary>
    public (Tensor K, Tensor V) ConditionKeysValues(Tensor cond) => cross.KeysValues(cond);

    /// <summary>
    /// The block on modulation rows from <see cref="Modulation"/> (6 × (B or 1, 1, D)) and the cross-attention's keys and
    /// values (<see cref="ConditionKeysValues"/>). Modulate(norm1(x)) is computed once: it is both queries and keys/values.
    /// </summary>
    public Tensor Step(Tensor x, IReadOnlyList<Tensor> m, (Tensor K, Tensor V) cond)
    {
        using var scope = NewDisposeScope();
        var h = addcmul(m[0], norm1.call(x), m[1], 1);                                    // x·(1 + scale) + shift
        x = addcmul(x, m[2], self.call(h, h, null), 1);
        x = x + cross.Attend(norm2.call(x), cond, null);
        x = addcmul(x, m[5], mlp.call(addcmul(m[3], norm3.call(x), m[4], 1)), 1);
        return x.MoveToOuterDisposeScope();
    }

    internal static Tensor Modulate(Tensor x, Tensor shift, Tensor scale) => x * (1 + scale) + shift;
}

/// <summary>
/// What stays the same over the denoising steps of one <see cref="ActionExpert"/> sampling call: the time embeddings'
/// modulation rows of every step and block, the cross-attention keys and values of the conditioning tokens, and the
/// state/point tokens with their positions. Made by <see cref="ActionExpert.Prepare"/>; its tensors (and the few
/// temporaries that made them) belong to the caller's dispose scope.
/// </summary>
internal sealed class ExpertSteps
{
    internal ExpertSteps(Tensor? prefix, Tensor actionPositions, Tensor[][][] blockRows, Tensor[][] finalRows, (Tensor K, Tensor V)[] cond)
    {
        (Prefix, ActionPositions, BlockRows, FinalRows, Cond) = (prefix, actionPositions, blockRows, finalRows, cond);
    }

    /// <summary>(B, P, D) point and state tokens with their positions, or null when the config has neither.</summary>
    internal Tensor? Prefix { get; }
    /// <summary>(1, H, D) positions of the action tokens.</summary>
    internal Tensor ActionPositions { get; }
    /// <summary>[step][block] 6 × (1, 1, D) modulation rows.</summary>
    internal Tensor[][][] BlockRows { get; }
    /// <summary>[step] shift and 1 + scale of the final layer, (1, 1, D) each.</summary>
    internal Tensor[][] FinalRows { get; }
    /// <summary>Per block, the conditioning tokens' keys and values.</summary>
    internal (Tensor K, Tensor V)[] Cond { get; }

    /// <summary>Number of steps prepared.</summary>
    public int Count => FinalRows.Length;

    /// <summary>Every tensor held, so a caller that keeps the steps beyond its dispose scope can take ownership of them.</summary>
    internal IEnumerable<Tensor> Tensors()
    {
        if (Prefix is not null) yield return Prefix;
        yield return ActionPositions;
        foreach (var step in BlockRows) foreach (var block in step) foreach (var row in block) yield return row;
        foreach (var step in FinalRows) foreach (var row in step) yield return row;
        foreach (var (k, v) in Cond) { yield return k; yield return v; }
    }
}

/// <summary>
/// System 1: a diffusion transformer that predicts the flow-matching velocity of an action chunk
/// (H, A) from the noisy chunk, the flow time, the optional proprioceptive state, the optional point
/// token (<see cref="PolicyConfig.PointGuidance"/>) and the bridge's conditioning tokens.
/// </summary>
internal sealed class ActionExpert : nn.Module<Tensor, Tensor, Tensor?, Tensor?, Tensor, Tensor>
{
    private readonly Linear actionIn, stateIn, time1, time2, finalModulation, actionOut;
    private readonly Linear? pointsIn;
    private readonly Parameter position;
    private readonly ModuleList<DitBlock> blocks;
    private readonly LayerNorm finalNorm;
    private readonly PolicyConfig config;

    public ActionExpert(string name, PolicyConfig c) : base(name)
    {
        config = c;
        var d = c.ExpertWidth;
        actionIn = nn.Linear(c.MaxActionDim, d);
        // The state token sees [state · mask, mask] so embodiments with fewer dims are told which are padding.
        stateIn = nn.Linear(2 * c.MaxStateDim, d);
        // Registered only when switched on, so checkpoints without point guidance keep their exact tensor set.
        if (c.PointGuidance) pointsIn = nn.Linear(PolicyConfig.PointGuideFeatures, d);
        time1 = nn.Linear(d, d);
        time2 = nn.Linear(d, d);
        position = nn.Parameter(randn(1, c.ChunkLength + 1, d) * 0.02);
        blocks = nn.ModuleList(Enumerable.Range(0, c.ExpertLayers).Select(i => new DitBlock($"block{i}", d, c.ExpertHeads)).ToArray());
        finalNorm = nn.LayerNorm(d, elementwise_affine: false);
        finalModulation = nn.Linear(d, 2 * d);
        actionOut = nn.Linear(d, c.MaxActionDim);
        RegisterComponents();
        nn.init.zeros_(finalModulation.weight!);
        nn.init.zeros_(finalModulation.bias!);
        nn.init.zeros_(actionOut.weight!);
        nn.init.zeros_(actionOut.bias!);
    }

    /// <summary>The layers whose shapes follow the action dimension: the action token's projection and the output.</summary>
    public IEnumerable<nn.Module> ActionLayoutModules => [actionIn, actionOut];

    /// <summary>The layer whose shape follows the state dimension: the state token's projection.</summary>
    public IEnumerable<nn.Module> StateLayoutModules => [stateIn];

    /// <param name="noisy">(B, H, A) noisy normalised actions.</param>
    /// <param name="t">(B) flow time in [0, 1].</param>
    /// <param name="state">(B, 2·S) normalised state and its mask, or null when the config has no state.</param>
    /// <param name="points">(B, 6) point-guide features, required exactly when the config has point guidance.</param>
    /// <param name="cond">(B, Q, D) conditioning tokens.</param>
    /// <returns>(B, H, A) predicted velocity.</returns>
    public override Tensor forward(Tensor noisy, Tensor t, Tensor? state, Tensor? points, Tensor cond)
    {
        using var scope = NewDisposeScope();
        var d = config.ExpertWidth;
        var time = TimeEmbedding(t);                                                       // (B, D)
        var x = actionIn.call(noisy);                                                      // (B, H, D)
        if (state is not null) x = cat([stateIn.call(state).unsqueeze(1), x], 1);          // (B, 1+H, D)
        x = x + position[.., ^(int)x.shape[1]..];
        // The point token needs no position: its projection's bias tells it apart from the others.
        if (pointsIn is not null)
            x = cat([pointsIn.call(points ?? throw new ArgumentException("a point-guided expert needs the point token")).unsqueeze(1), x], 1);
        foreach (var block in blocks) x = block.call(x, time, cond);
        var m = finalModulation.call(nn.functional.silu(time)).unsqueeze(1).chunk(2, -1);
        x = actionOut.call(DitBlock.Modulate(finalNorm.call(x), m[0], m[1]));               // (B, L, A)
        return x[.., ^config.ChunkLength..].MoveToOuterDisposeScope();                      // (B, H, A)
    }

    /// <summary>(B) flow times → (B, D) time embedding.</summary>
    private Tensor TimeEmbedding(Tensor t) => time2.call(nn.functional.silu(time1.call(TimeFeatures(t * 1000, config.ExpertWidth))));

    /// <summary>
    /// Everything of <see cref="forward"/> that does not depend on the noisy actions, for the flow times
    /// <paramref name="times"/> (K) of a sampling loop: the time path runs once for all K steps instead of once per step,
    /// and the conditioning tokens' keys and values are projected once. <see cref="Velocity"/> then runs one step on it.
    /// Its tensors belong to the caller's dispose scope.
    /// </summary>
    /// <param name="times">(K) flow times of the steps, the same for every sample.</param>
    /// <param name="state">(B, 2·S) as in <see cref="forward"/>.</param>
    /// <param name="points">(B, 6) as in <see cref="forward"/>.</param>
    /// <param name="cond">(B, Q, D) conditioning tokens.</param>
    public ExpertSteps Prepare(Tensor times, Tensor? state, Tensor? points, Tensor cond)
    {
        var k = (int)times.shape[0];
        var d = config.ExpertWidth;
        var time = TimeEmbedding(times);                                               // (K, D)
        Tensor? prefix = null;
        if (state is not null) prefix = stateIn.call(state).unsqueeze(1) + position[.., ..1]; // (B, 1, D)
        if (pointsIn is not null)
        {
            var point = pointsIn.call(points ?? throw new ArgumentException("a point-guided expert needs the point token")).unsqueeze(1);
            prefix = prefix is null ? point : cat([point, prefix], 1);                 // (B, P, D)
        }
        var actionPositions = position[.., ^config.ChunkLength..];                    // (1, H, D)
        var blockRows = new Tensor[k][][];
        for (var i = 0; i < k; i++) blockRows[i] = new Tensor[blocks.Count][];
        var keysValues = new (Tensor K, Tensor V)[blocks.Count];
        for (var j = 0; j < blocks.Count; j++)
        {
            var rows = blocks[j].Modulation(time).unsqueeze(-2).unsqueeze(-2).unbind(0); // K × (6, 1, 1, D)
            for (var i = 0; i < k; i++) blockRows[i][j] = rows[i].unbind(0);          // 6 × (1, 1, D)
            keysValues[j] = blocks[j].ConditionKeysValues(cond);
        }
        var final = finalModulation.call(nn.functional.silu(time)).view(k, 2, d);         // (K, 2, D)
        final.narrow(-2, 1, 1).add_(1);
        var finalRows = final.unsqueeze(-2).unsqueeze(-2).unbind(0).Select(r => r.unbind(0)).ToArray(); // K × 2 × (1, 1, D)
        return new ExpertSteps(prefix, actionPositions, blockRows, finalRows, keysValues);
    }

    /// <summary>
    /// <see cref="forward"/> at step <paramref name="step"/> of <paramref name="prepared"/>: the same velocity (up to float
    /// rounding: fused multiply-adds) with about half the operations, which is what a batch-1 call's time is made of.
    /// </summary>
    /// <param name="noisy">(B, H, A) noisy normalised actions.</param>
    /// <param name="step">Index of the step's flow time in the prepared times.</param>
    /// <param name="prepared">From <see cref="Prepare"/> with the same state, points and conditioning.</param>
    /// <returns>(B, H, A) predicted velocity.</returns>
    public Tensor Velocity(Tensor noisy, int step, ExpertSteps prepared)
    {
        using var scope = NewDisposeScope();
        var x = actionIn.call(noisy) + prepared.ActionPositions;                           // (B, H, D)
        if (prepared.Prefix is { } prefix) x = cat([prefix, x], 1);                        // (B, L, D)
        var rows = prepared.BlockRows[step];
        for (var j = 0; j < blocks.Count; j++) x = blocks[j].Step(x, rows[j], prepared.Cond[j]);
        var m = prepared.FinalRows[step];
        // The output layers work per token, so only the action tokens go through them.
        x = x[.., ^config.ChunkLength..];                                                  // (B, H, D)
        return actionOut.call(addcmul(m[0], finalNorm.call(x), m[1], 1)).MoveToOuterDisposeScope(); // (B, H, A)
    }

    /// <summary>Sinusoidal features of a scalar per sample: (B) → (B, D).</summary>
    internal static Tensor TimeFeatures(Tensor t, long dim)
    {
        var half = dim / 2;
        var freqs = exp(-Math.Log(10000) * arange(0, half, dtype: float32, device: t.device) / half).to(t.dtype);
        var args = t.unsqueeze(-1) * freqs;
        return cat([args.cos(), args.sin()], -1);
    }
}
