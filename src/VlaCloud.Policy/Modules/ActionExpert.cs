using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Modules;

/// <summary>DiT block: adaLN-zero self-attention, cross-attention to the conditioning tokens, adaLN-zero MLP.</summary>
internal sealed class DitBlock : nn.Module
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
    public Tensor Forward(Tensor x, Tensor time, Tensor cond)
    {
        using var scope = NewDisposeScope();
        var m = modulation.call(nn.functional.silu(time)).unsqueeze(1).chunk(6, -1); // 6 × (B, 1, D)
        var h = Modulate(norm1.call(x), m[0], m[1]);                                  // once: it is both queries and keys/values
        x = x + m[2] * self.call(h, h, null);
        x = x + cross.call(norm2.call(x), cond, null);
        x = x + m[5] * mlp.call(Modulate(norm3.call(x), m[3], m[4]));
        return x.MoveToOuterDisposeScope();
    }

    internal static Tensor Modulate(Tensor x, Tensor shift, Tensor scale) => x * (1 + scale) + shift;
}

/// <summary>
/// System 1: a diffusion transformer that predicts the flow-matching velocity of an action chunk
/// (H, A) from the noisy chunk, the flow time, the optional proprioceptive state, the optional point
/// token (<see cref="PolicyConfig.PointGuidance"/>) and the bridge's conditioning tokens.
/// </summary>
internal sealed class ActionExpert : nn.Module
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
    public Tensor Forward(Tensor noisy, Tensor t, Tensor? state, Tensor? points, Tensor cond)
    {
        using var scope = NewDisposeScope();
        var d = config.ExpertWidth;
        var time = time2.call(nn.functional.silu(time1.call(TimeFeatures(t * 1000, d)))); // (B, D)
        var x = actionIn.call(noisy);                                                      // (B, H, D)
        if (state is not null) x = cat([stateIn.call(state).unsqueeze(1), x], 1);          // (B, 1+H, D)
        x = x + position[.., ^(int)x.shape[1]..];
        // The point token needs no position: its projection's bias tells it apart from the others.
        if (pointsIn is not null)
            x = cat([pointsIn.call(points ?? throw new ArgumentException("a point-guided expert needs the point token")).unsqueeze(1), x], 1);
        foreach (var block in blocks) x = block.Forward(x, time, cond);
        var m = finalModulation.call(nn.functional.silu(time)).unsqueeze(1).chunk(2, -1);
        x = actionOut.call(DitBlock.Modulate(finalNorm.call(x), m[0], m[1]));               // (B, L, A)
        return x[.., ^config.ChunkLength..].MoveToOuterDisposeScope();                      // (B, H, A)
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
