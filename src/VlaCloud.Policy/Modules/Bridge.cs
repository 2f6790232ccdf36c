using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Modules;

/// <summary>One querying block: LN(q) → cross-attention to the VLM states → residual, LN → MLP → residual.</summary>
internal sealed class QueryBlock : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    private readonly LayerNorm norm1, norm2;
    private readonly Attention cross;
    private readonly GeluMlp mlp;

    public QueryBlock(string name, long dim, long heads) : base(name)
    {
        norm1 = nn.LayerNorm(dim);
        cross = new Attention("cross", dim, heads);
        norm2 = nn.LayerNorm(dim);
        mlp = new GeluMlp("mlp", dim, 4 * dim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor q, Tensor context, Tensor mask)
    {
        using var scope = NewDisposeScope();
        q = q + cross.call(norm1.call(q), context, mask);
        q = q + mlp.call(norm2.call(q));
        return q.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// The bridge between the systems (a small Q-Former): the latent queries' final VLM states, projected,
/// attend over all VLM states and become the action expert's conditioning tokens.
/// </summary>
internal sealed class Bridge : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    private readonly Linear inQuery, inContext, output;
    private readonly ModuleList<QueryBlock> blocks;
    private readonly LayerNorm norm;

    public Bridge(string name, PolicyConfig c) : base(name)
    {
        inQuery = nn.Linear(c.LmWidth, c.BridgeWidth);
        inContext = nn.Linear(c.LmWidth, c.BridgeWidth);
        blocks = nn.ModuleList(Enumerable.Range(0, c.BridgeLayers).Select(i => new QueryBlock($"block{i}", c.BridgeWidth, c.BridgeHeads)).ToArray());
        norm = nn.LayerNorm(c.BridgeWidth);
        output = nn.Linear(c.BridgeWidth, c.ExpertWidth);
        RegisterComponents();
    }

    /// <param name="queries">(B, Q, D_lm) final VLM states of the latent queries.</param>
    /// <param name="context">(B, T, D_lm) all final VLM states.</param>
    /// <param name="contextMask">(B, 1, 1, T) additive key-padding mask.</param>
    /// <returns>(B, Q, D_expert) conditioning tokens.</returns>
    public override Tensor forward(Tensor queries, Tensor context, Tensor contextMask)
    {
        using var scope = NewDisposeScope();
        var q = inQuery.call(queries);       // (B, Q, Db)
        var ctx = inContext.call(context);   // (B, T, Db)
        foreach (var block in blocks) q = block.call(q, ctx, contextMask);
        return output.call(norm.call(q)).MoveToOuterDisposeScope();
    }
}
