using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace VlaCloud.Policy.InternVla.Heads;

/// <summary>
/// Cross-attention with <c>nn.MultiheadAttention</c>'s parameters: one packed <c>in_proj_weight</c>/<c>in_proj_bias</c>
/// for queries, keys and values, and <c>out_proj</c>; dropout on the attention weights in training mode.
/// </summary>
internal sealed class PackedCrossAttention : nn.Module<Tensor, Tensor, Tensor?, Tensor>
{
    [ComponentName(Name = "in_proj_weight")] private readonly Parameter inProjWeight;
    [ComponentName(Name = "in_proj_bias")] private readonly Parameter inProjBias;
    [ComponentName(Name = "out_proj")] private readonly Linear outProj;
    private readonly long heads;
    private readonly double dropout;

    public PackedCrossAttention(string name, long dim, long heads, double dropout) : base(name)
    {
        inProjWeight = nn.Parameter(empty(3 * dim, dim));
        inProjBias = nn.Parameter(zeros(3 * dim));
        outProj = nn.Linear(dim, dim);
        this.heads = heads;
        this.dropout = dropout;
        RegisterComponents();
        // nn.MultiheadAttention._reset_parameters.
        using var _ = no_grad();
        nn.init.xavier_uniform_(inProjWeight);
        nn.init.zeros_(outProj.bias!);
    }

    /// <param name="query">(B, Q, D) queries.</param>
    /// <param name="context">(B, L, D) keys and values.</param>
    /// <param name="keep">Optional (B, L) boolean mask, true where a key takes part.</param>
    /// <returns>(B, Q, D).</returns>
    public override Tensor forward(Tensor query, Tensor context, Tensor? keep)
    {
        using var scope = NewDisposeScope();
        var w = inProjWeight.chunk(3, 0);                                   // 3 × (D, D)
        var bias = inProjBias.chunk(3, 0);                                  // 3 × (D)
        var q = nn.functional.linear(query, w[0], bias[0]);                 // (B, Q, D)
        var k = nn.functional.linear(context, w[1], bias[1]);               // (B, L, D)
        var v = nn.functional.linear(context, w[2], bias[2]);               // (B, L, D)
        var mask = keep?.to(ScalarType.Bool).unsqueeze(1).unsqueeze(1);     // (B, 1, 1, L)
        var y = MultiHead.Attend(q, k, v, heads, mask, training ? dropout : 0);
        return outProj.call(y).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Upstream's <c>CrossAttentionBlock</c>: LN(queries) → cross-attention to one layer's states → residual,
/// LN → MLP (GELU) → dropout → residual.
/// </summary>
internal sealed class CrossAttentionBlock : nn.Module<Tensor, Tensor, Tensor?, Tensor>
{
    private readonly LayerNorm norm1;
    [ComponentName(Name = "cross_attn")] private readonly PackedCrossAttention crossAttn;
    private readonly LayerNorm norm2;
    private readonly Sequential mlp;
    private readonly Dropout dropout;

    public CrossAttentionBlock(string name, QFormerConfig c) : base(name)
    {
        norm1 = nn.LayerNorm(c.OutputDim);
        crossAttn = new PackedCrossAttention("cross_attn", c.OutputDim, c.NumHeads, c.Dropout);
        norm2 = nn.LayerNorm(c.OutputDim);
        // Named 0 and 2 as upstream's nn.Sequential(Linear, GELU, Linear), so checkpoints load by name.
        mlp = nn.Sequential(nn.Linear(c.OutputDim, c.MlpHidden), nn.GELU(), nn.Linear(c.MlpHidden, c.OutputDim));
        dropout = nn.Dropout(c.Dropout);
        RegisterComponents();
    }

    /// <param name="query">(B, Q, D) queries.</param>
    /// <param name="states">(B, L, D) one layer's projected states.</param>
    /// <param name="keep">Optional (B, L) mask, true where a state takes part.</param>
    public override Tensor forward(Tensor query, Tensor states, Tensor? keep)
    {
        using var scope = NewDisposeScope();
        query = query + crossAttn.call(norm1.call(query), states, keep);
        query = query + dropout.call(mlp.call(norm2.call(query)));
        return query.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// The bridge of InternVLA-M1 (<c>LayerwiseQFormer</c> from <c>get_layerwise_qformer</c>): learnable queries, owned by
/// the bridge, pass through one cross-attention block per chosen VLM layer, each attending to that layer's states
/// after the shared projection <c>proj</c> to the bridge width. Parameter names are upstream's.
/// </summary>
public sealed class LayerwiseQFormer : nn.Module<IReadOnlyList<Tensor>, Tensor?, Tensor>
{
    [ComponentName(Name = "query_tokens")] private readonly Parameter queryTokens;
    private readonly Linear proj;
    private readonly ModuleList<CrossAttentionBlock> layers;
    private readonly QFormerConfig config;

    /// <summary>Builds the bridge (queries drawn from N(0, 1), as upstream).</summary>
    public LayerwiseQFormer(string name, QFormerConfig config) : base(name)
    {
        config.Validate();
        this.config = config;
        proj = nn.Linear(config.InputDim, config.OutputDim);
        queryTokens = nn.Parameter(randn(config.NumQueryTokens, config.OutputDim));
        layers = nn.ModuleList(Enumerable.Range(0, config.Layers).Select(i => new CrossAttentionBlock($"{i}", config)).ToArray());
        RegisterComponents();
    }

    /// <summary>The sizes this bridge was built with.</summary>
    public QFormerConfig Config => config;

    /// <param name="layerStates">One (B, L, D_in) tensor per block: the chosen VLM layers' states (in M1 each already
    /// concatenated with the projected DINO tokens).</param>
    /// <param name="keep">Optional (B, L) mask, true where a state takes part. M1 passes none; upstream's masked path
    /// fails inside <c>nn.MultiheadAttention</c>, so this follows its documented meaning (1 = keep), not its code.</param>
    /// <returns>(B, Q, D_out) queries.</returns>
    public override Tensor forward(IReadOnlyList<Tensor> layerStates, Tensor? keep)
    {
        if (layerStates.Count != layers.Count)
            throw new ArgumentException($"the Q-Former has {layers.Count} blocks (layers {config.StartLayer}..{config.EndLayer - 1}) but got {layerStates.Count} hidden states");
        using var scope = NewDisposeScope();
        var b = layerStates[0].shape[0];
        var query = queryTokens.unsqueeze(0).expand(b, -1, -1);                  // (B, Q, D)
        for (var i = 0; i < layers.Count; i++)
            query = layers[i].call(query, proj.call(layerStates[i]), keep);     // (B, Q, D)
        return query.MoveToOuterDisposeScope();
    }

    /// <summary>The forward pass without a mask, as M1 calls it.</summary>
    public Tensor call(IReadOnlyList<Tensor> layerStates) => call(layerStates, null);
}
