using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Modules;

/// <summary>Causal self-attention with rotary positions and an optional KV cache.</summary>
internal sealed class CausalSelfAttention : nn.Module<Tensor, Tensor, Tensor, Tensor, KvCache?, int, Tensor>
{
    private readonly Linear qkv, proj;
    private readonly long heads;

    public CausalSelfAttention(string name, long dim, long heads) : base(name)
    {
        if (dim % heads != 0) throw new ArgumentException($"width {dim} is not divisible by {heads} heads");
        qkv = nn.Linear(dim, 3 * dim, hasBias: false);
        proj = nn.Linear(dim, dim, hasBias: false);
        this.heads = heads;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor mask, KvCache? cache, int layer)
    {
        using var scope = NewDisposeScope();
        var (b, t, d) = (x.shape[0], x.shape[1], x.shape[2]);
        var parts = qkv.call(x).view(b, t, 3, heads, d / heads).permute(2, 0, 3, 1, 4); // (3, B, h, T, hd)
        var q = Rotary.Apply(parts[0], cos, sin);
        var k = Rotary.Apply(parts[1], cos, sin);
        var v = parts[2];
        if (cache is not null) (k, v) = cache.Append(layer, k, v);                      // (B, h, Tk, hd)
        var y = nn.functional.scaled_dot_product_attention(q, k, v, mask);             // (B, h, T, hd)
        return proj.call(y.transpose(1, 2).reshape(b, t, d)).MoveToOuterDisposeScope();
    }
}

/// <summary>Pre-norm decoder block: RMSNorm → attention → residual, RMSNorm → SwiGLU → residual.</summary>
internal sealed class DecoderBlock : nn.Module<Tensor, Tensor, Tensor, Tensor, KvCache?, int, Tensor>
{
    private readonly RmsNorm norm1, norm2;
    private readonly CausalSelfAttention attn;
    private readonly SwiGlu mlp;

    public DecoderBlock(string name, PolicyConfig c) : base(name)
    {
        norm1 = new RmsNorm("norm1", c.LmWidth);
        attn = new CausalSelfAttention("attn", c.LmWidth, c.LmHeads);
        norm2 = new RmsNorm("norm2", c.LmWidth);
        mlp = new SwiGlu("mlp", c.LmWidth, c.LmMlpWidth);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor mask, KvCache? cache, int layer)
    {
        using var scope = NewDisposeScope();
        x = x + attn.call(norm1.call(x), cos, sin, mask, cache, layer);
        x = x + mlp.call(norm2.call(x));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// System 2's decoder-only transformer over <c>[image tokens; text; latent queries]</c>, with token
/// embeddings tied to the output head (as in Qwen2.5-VL-3B).
/// </summary>
internal sealed class LanguageModel : nn.Module<Tensor, Tensor, Tensor, KvCache?, Tensor>
{
    private readonly Embedding embed;
    private readonly ModuleList<DecoderBlock> blocks;
    private readonly RmsNorm norm;
    private readonly PolicyConfig config;

    public LanguageModel(string name, PolicyConfig c) : base(name)
    {
        config = c;
        embed = nn.Embedding(c.VocabSize, c.LmWidth);
        blocks = nn.ModuleList(Enumerable.Range(0, c.LmLayers).Select(i => new DecoderBlock($"block{i}", c)).ToArray());
        norm = new RmsNorm("norm", c.LmWidth);
        RegisterComponents();
        using (no_grad()) embed.weight!.normal_(0, 0.02);
    }

    public int Layers => config.LmLayers;

    /// <summary>(B, T) token ids → (B, T, D) embeddings.</summary>
    public Tensor Embed(Tensor ids) => embed.call(ids);

    /// <param name="x">(B, T, D) input embeddings.</param>
    /// <param name="positions">(B, T) rotary positions.</param>
    /// <param name="mask">(B, 1, T, Tk) additive mask (0 or -inf).</param>
    /// <param name="cache">filled with this call's keys/values when given (greedy decoding), else null.</param>
    /// <returns>(B, T, D) final normalised hidden states.</returns>
    public override Tensor forward(Tensor x, Tensor positions, Tensor mask, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        var (cos, sin) = Rotary.Tables(positions, config.LmWidth / config.LmHeads, config.RopeTheta, x.dtype);
        for (var i = 0; i < blocks.Count; i++) x = blocks[i].call(x, cos, sin, mask, cache, i);
        return norm.call(x).MoveToOuterDisposeScope();
    }

    /// <summary>(…, D) hidden states → (…, V) logits through the tied embedding.</summary>
    public Tensor Logits(Tensor hidden) => hidden.matmul(embed.weight!.t());
}
