using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using VlaCloud.Policy.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy.InternVla.Heads;

/// <summary>A single <c>linear</c> layer under its own name (upstream's <c>ActionEmbedder</c> and <c>HistoryEmbedder</c>).</summary>
internal sealed class LinearEmbedder : nn.Module<Tensor, Tensor>
{
    private readonly Linear linear;

    public LinearEmbedder(string name, long inFeatures, long outFeatures) : base(name)
    {
        linear = nn.Linear(inFeatures, outFeatures);
        RegisterComponents();
    }

    public Linear Linear => linear;

    public override Tensor forward(Tensor x) => linear.call(x);
}

/// <summary>Upstream's <c>TimestepEmbedder</c>: sinusoidal features of the timestep, then Linear → SiLU → Linear.</summary>
internal sealed class TimestepEmbedder : nn.Module<Tensor, Tensor>
{
    /// <summary>Sinusoidal features per timestep (upstream's default, fixed in every DiT size).</summary>
    public const int FrequencyEmbeddingSize = 256;

    private readonly Sequential mlp;

    public TimestepEmbedder(string name, long dim) : base(name)
    {
        mlp = nn.Sequential(nn.Linear(FrequencyEmbeddingSize, dim), nn.SiLU(), nn.Linear(dim, dim));
        RegisterComponents();
    }

    public Sequential Mlp => mlp;

    /// <param name="t">(N) integer or fractional timesteps.</param>
    /// <returns>(N, D).</returns>
    public override Tensor forward(Tensor t)
    {
        using var features = ActionExpert.TimeFeatures(t.to(float32), FrequencyEmbeddingSize); // (N, 256)
        using var typed = features.to(mlp.parameters().First().dtype);
        return mlp.call(typed);
    }
}

/// <summary>
/// Upstream's <c>LabelEmbedder</c> (<c>z_embedder</c>): a Linear over the condition tokens, and the learned
/// <c>uncondition</c> that replaces a sample's whole condition for classifier-free guidance and, in training, with
/// probability <c>class_dropout_prob</c>.
/// </summary>
internal sealed class ConditionEmbedder : nn.Module<Tensor, Tensor>
{
    private readonly Parameter? uncondition;
    // VlaCloud's point token's null (ActionModelConfig.PointToken): dropped with the rest of the condition.
    [ComponentName(Name = "point_uncondition")] private readonly Parameter? pointUncondition;
    private readonly Linear linear;
    private readonly double dropoutProb;

    public ConditionEmbedder(string name, long tokens, long dim, double dropoutProb, bool pointToken = false) : base(name)
    {
        linear = nn.Linear(dim, dim);
        // Upstream registers uncondition only when conditions can be dropped.
        if (dropoutProb > 0) uncondition = nn.Parameter(empty(tokens, dim));
        if (dropoutProb > 0 && pointToken) pointUncondition = nn.Parameter(empty(1, dim));
        this.dropoutProb = dropoutProb;
        RegisterComponents();
    }

    public Linear Linear => linear;

    /// <summary>(Q, D) learned null condition; throws when the config has no condition dropout.</summary>
    public Parameter Uncondition => uncondition ?? throw new InvalidOperationException("this DiT has class_dropout_prob 0, so no uncondition and no guidance");

    /// <summary>(1, D) learned null of the point token, or null without one (or without condition dropout).</summary>
    public Parameter? PointUncondition => pointUncondition;

    /// <summary>
    /// (Q [+ 1], D) the null of the whole condition the DiT reads: <see cref="Uncondition"/>, then the point token's null
    /// when there is one, so guidance and dropout drop the point with the queries. A new tensor unless there is no point token.
    /// </summary>
    public Tensor FullUncondition => pointUncondition is null ? Uncondition : cat([Uncondition, pointUncondition], 0);

    /// <param name="conditions">(N, Q, D) condition tokens.</param>
    /// <returns>(N, Q, D) embedded tokens; in training mode each sample's tokens are first replaced, all together, by
    /// <c>uncondition</c> with probability <c>class_dropout_prob</c> (one uniform draw per sample).</returns>
    public override Tensor forward(Tensor conditions)
    {
        if (!training || uncondition is null) return linear.call(conditions);
        using var scope = NewDisposeScope();
        var drop = rand(conditions.shape[0], device: conditions.device) < dropoutProb;      // (N)
        var dropped = where(drop.view(-1, 1, 1), FullUncondition.to(conditions.dtype), conditions); // (N, Q [+ 1], D)
        return linear.call(dropped).MoveToOuterDisposeScope();
    }
}

/// <summary>Upstream's <c>DiTBlock</c> (self-attention conditioning): LN → attention → residual, LN → MLP (tanh GELU) → residual.</summary>
internal sealed class DitSelfAttentionBlock : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm norm1;
    private readonly FusedSelfAttention attn;
    private readonly LayerNorm norm2;
    private readonly GeluMlp mlp;

    public DitSelfAttentionBlock(string name, ActionModelConfig c) : base(name)
    {
        norm1 = nn.LayerNorm(c.TokenSize, Dit.NormEps, elementwise_affine: false);
        attn = new FusedSelfAttention("attn", c.TokenSize, c.NumHeads);
        norm2 = nn.LayerNorm(c.TokenSize, Dit.NormEps, elementwise_affine: false);
        mlp = new GeluMlp("mlp", c.TokenSize, c.MlpHidden, tanhApproximation: true);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        x = x + attn.call(norm1.call(x));
        x = x + mlp.call(norm2.call(x));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>Upstream's <c>FinalLayer</c>: LN (no affine) → Linear to the action dimension.</summary>
internal sealed class DitFinalLayer : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "norm_final")] private readonly LayerNorm normFinal;
    private readonly Linear linear;

    public DitFinalLayer(string name, long dim, long outputs) : base(name)
    {
        normFinal = nn.LayerNorm(dim, Dit.NormEps, elementwise_affine: false);
        linear = nn.Linear(dim, outputs);
        RegisterComponents();
    }

    public Linear Linear => linear;

    public override Tensor forward(Tensor x) => linear.call(normFinal.call(x));
}

/// <summary>
/// InternVLA-M1's action transformer (<c>DiT</c> in <c>action_model/DiT_modules/models.py</c>), with in-context
/// conditioning: the sequence is <c>[t_emb + z_embedder(z) (Q tokens); x_embedder(noisy actions) (T tokens)]</c> plus
/// learned positions, plain transformer blocks, and the final layer read on the action tokens. It predicts the noise ε.
/// <c>history_embedder</c> is built (upstream checkpoints carry it) but, as upstream, never used.
/// </summary>
public sealed class Dit : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    internal const double NormEps = 1e-6;

    [ComponentName(Name = "positional_embedding")] private readonly Parameter positionalEmbedding;
    // VlaCloud's point token's position (ActionModelConfig.PointToken), apart so positional_embedding keeps the released shape.
    [ComponentName(Name = "point_position")] private readonly Parameter? pointPosition;
    // Upstream: "Action history is not used now"; kept so the weights load with every tensor accounted for.
    [ComponentName(Name = "history_embedder")] private readonly LinearEmbedder historyEmbedder;
    [ComponentName(Name = "x_embedder")] private readonly LinearEmbedder xEmbedder;
    [ComponentName(Name = "t_embedder")] private readonly TimestepEmbedder tEmbedder;
    [ComponentName(Name = "z_embedder")] private readonly ConditionEmbedder zEmbedder;
    private readonly ModuleList<DitSelfAttentionBlock> blocks;
    [ComponentName(Name = "final_layer")] private readonly DitFinalLayer finalLayer;
    private readonly ActionModelConfig config;

    /// <summary>Builds the DiT with upstream's <c>initialize_weights</c>.</summary>
    public Dit(string name, ActionModelConfig config) : base(name)
    {
        config.Validate();
        this.config = config;
        long d = config.TokenSize;
        historyEmbedder = new LinearEmbedder("history_embedder", config.ActionDim, d);
        xEmbedder = new LinearEmbedder("x_embedder", config.ActionDim, d);
        tEmbedder = new TimestepEmbedder("t_embedder", d);
        zEmbedder = new ConditionEmbedder("z_embedder", config.ConditionTokens, d, config.ClassDropoutProb, config.PointToken);
        positionalEmbedding = nn.Parameter(Math.Pow(d, -0.5) * randn(config.ConditionTokens + config.ChunkLength, d));
        if (config.PointToken) pointPosition = nn.Parameter(Math.Pow(d, -0.5) * randn(1, d));
        blocks = nn.ModuleList(Enumerable.Range(0, config.Depth).Select(i => new DitSelfAttentionBlock($"{i}", config)).ToArray());
        finalLayer = new DitFinalLayer("final_layer", d, config.ActionDim);
        RegisterComponents();

        using var _ = no_grad();
        HeadInit.Linears(this, w => nn.init.xavier_uniform_(w));
        nn.init.normal_(xEmbedder.Linear.weight!, std: 0.02);
        nn.init.normal_(historyEmbedder.Linear.weight!, std: 0.02);
        if (config.ClassDropoutProb > 0) nn.init.normal_(zEmbedder.Uncondition, std: 0.02);
        if (zEmbedder.PointUncondition is { } pointNull) nn.init.normal_(pointNull, std: 0.02);
        nn.init.normal_(zEmbedder.Linear.weight!, std: 0.02);
        nn.init.normal_(((Linear)tEmbedder.Mlp[0]).weight!, std: 0.02);
        nn.init.normal_(((Linear)tEmbedder.Mlp[2]).weight!, std: 0.02);
        // The output starts at zero, so the untrained model predicts no noise.
        nn.init.zeros_(finalLayer.Linear.weight!);
    }

    /// <summary>The sizes this DiT was built with.</summary>
    public ActionModelConfig Config => config;

    /// <summary>The layers whose shapes follow <see cref="ActionModelConfig.ActionDim"/>: the action and history embedders and the output projection.</summary>
    internal IEnumerable<nn.Module> ActionLayoutModules => [xEmbedder.Linear, historyEmbedder.Linear, finalLayer.Linear];

    /// <summary>
    /// (Q, D) learned null condition used for guidance and condition dropout; with the point token (Q + 1, D), its null
    /// last (a new tensor each call then).
    /// </summary>
    public Tensor Uncondition => zEmbedder.FullUncondition;

    /// <summary>
    /// (Q [+ 1] + T, D) the positions of the whole sequence: the queries', the point token's when there is one, the actions'.
    /// A new tensor with the point token, else the parameter.
    /// </summary>
    private Tensor Positions => pointPosition is null ? positionalEmbedding
        : cat([positionalEmbedding[..config.ConditionTokens], pointPosition, positionalEmbedding[config.ConditionTokens..]], 0);

    internal ConditionEmbedder ConditionEmbedder => zEmbedder;

    /// <param name="x">(N, T, A) noisy actions, T = the chunk length.</param>
    /// <param name="t">(N) diffusion timesteps of the base (un-respaced) process.</param>
    /// <param name="z">(N, Q, D) condition tokens (Q + 1 with the point token last); in training mode dropped to
    /// <c>uncondition</c> per sample with probability <c>class_dropout_prob</c>.</param>
    /// <returns>(N, T, A) predicted noise.</returns>
    public override Tensor forward(Tensor x, Tensor t, Tensor z)
    {
        CheckCondition(z);
        using var scope = NewDisposeScope();
        var actions = xEmbedder.call(x);                                  // (N, T, D)
        var time = tEmbedder.call(t);                                     // (N, D)
        var cond = time.unsqueeze(1) + zEmbedder.call(z);                 // (N, Q, D)
        var h = cat([cond, actions], 1) + Positions;                      // (N, Q+T, D)
        foreach (var block in blocks) h = block.call(h);
        h = finalLayer.call(h);                                           // (N, Q+T, A)
        return h[.., config.ConditionSequence..].MoveToOuterDisposeScope(); // (N, T, A)
    }

    /// <summary>Refuses a condition without exactly the tokens the DiT reads (the point token is easy to leave out).</summary>
    private void CheckCondition(Tensor z)
    {
        if (z.dim() != 3 || z.shape[1] != config.ConditionSequence)
            throw new ArgumentException($"the DiT reads (N, {config.ConditionSequence}, D) condition tokens{(config.PointToken ? " (the queries, then the point token)" : "")}, not [{string.Join(", ", z.shape)}]");
    }

    /// <summary>
    /// What a DDIM sampling's DiT passes share, computed once per request instead of once per step: the embedded condition
    /// <c>z_embedder(z)</c> and, for each step's timestep, the condition tokens' part of the sequence
    /// <c>t_emb + z_embedder(z) + positions[:Q]</c>. The arithmetic is the forward's (the same ops on the same shapes, the
    /// sum split by token range, which is elementwise), so <see cref="ForwardPrepared"/> is bit-identical to
    /// <see cref="forward"/>. Runs without autograd; the module must be in eval mode (training drops conditions at random).
    /// </summary>
    /// <param name="z">(N, Q, D) condition tokens.</param>
    /// <param name="timesteps">The base process's timestep of each step, in the order the steps are taken.</param>
    /// <returns>One (N, Q, D) tensor per step, in the caller's dispose scope.</returns>
    internal Tensor[] PrepareConditionTokens(Tensor z, IReadOnlyList<long> timesteps)
    {
        CheckCondition(z);
        using var scope = NewDisposeScope();
        var n = z.shape[0];
        var embedded = zEmbedder.call(z);                                                     // (N, Q, D)
        var positions = Positions[..config.ConditionSequence];                                 // (Q, D)
        var prepared = new Tensor[timesteps.Count];
        for (var i = 0; i < timesteps.Count; i++)
        {
            // The embedder runs on (N) copies of the step's timestep, as the per-step forward did, so its rows round alike.
            var time = tEmbedder.call(full(n, timesteps[i], ScalarType.Int64, z.device));        // (N, D)
            prepared[i] = ((time.unsqueeze(1) + embedded) + positions).MoveToOuterDisposeScope(); // (N, Q, D)
        }
        return prepared;
    }

    /// <summary>
    /// <see cref="forward"/> given a step's prepared condition tokens (<see cref="PrepareConditionTokens"/>): only the
    /// action tokens are embedded, and the final layer (per-token LN and Linear) runs on the action tokens alone.
    /// </summary>
    /// <param name="x">(N, T, A) noisy actions.</param>
    /// <param name="conditionTokens">(N, Q, D) the step's prepared tokens.</param>
    /// <returns>(N, T, A) predicted noise.</returns>
    internal Tensor ForwardPrepared(Tensor x, Tensor conditionTokens)
    {
        using var scope = NewDisposeScope();
        var q = config.ConditionSequence;
        // The actions' positions are the released tensor's last T rows whether or not a point token precedes them.
        var actions = xEmbedder.call(x) + positionalEmbedding[config.ConditionTokens..];       // (N, T, D)
        var h = cat([conditionTokens, actions], 1);                                            // (N, Q+T, D)
        foreach (var block in blocks) h = block.call(h);
        return finalLayer.call(h[.., q..]).MoveToOuterDisposeScope();                           // (N, T, A)
    }

    /// <summary>
    /// Upstream's <c>forward_with_cfg</c>: the first half of <paramref name="x"/> runs twice, with the first and the
    /// second half of <paramref name="z"/> (condition, then uncondition); the guided noise
    /// <c>ε_u + scale·(ε_c − ε_u)</c> is returned for both halves.
    /// </summary>
    /// <param name="x">(2N, T, A) noisy actions (only the first N are read).</param>
    /// <param name="t">(2N) timesteps.</param>
    /// <param name="z">(2N, Q, D): N conditions, then N unconditions.</param>
    /// <param name="cfgScale">Guidance scale.</param>
    /// <returns>(2N, T, A).</returns>
    public Tensor ForwardWithCfg(Tensor x, Tensor t, Tensor z, double cfgScale)
    {
        using var scope = NewDisposeScope();
        var half = x[..(int)(x.shape[0] / 2)];
        var eps = call(cat([half, half], 0), t, z);                       // (2N, T, A)
        var both = eps.chunk(2, 0);
        var guided = both[1] + cfgScale * (both[0] - both[1]);            // (N, T, A)
        return cat([guided, guided], 0).MoveToOuterDisposeScope();
    }
}
