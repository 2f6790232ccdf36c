using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy.InternVla.Heads;

/// <summary>Scaled dot-product attention over projected queries, keys and values, split into heads and merged back.</summary>
internal static class MultiHead
{
    /// <param name="q">(B, T, D) projected queries.</param>
    /// <param name="k">(B, S, D) projected keys.</param>
    /// <param name="v">(B, S, D) projected values.</param>
    /// <param name="heads">Heads; D must divide by it.</param>
    /// <param name="mask">Optional boolean (B, 1, 1, S) mask, true where a key takes part.</param>
    /// <param name="dropout">Dropout on the attention weights (pass 0 outside training).</param>
    /// <returns>(B, T, D) attention output before the output projection.</returns>
    public static Tensor Attend(Tensor q, Tensor k, Tensor v, long heads, Tensor? mask = null, double dropout = 0)
    {
        using var scope = NewDisposeScope();
        var (b, t, d) = (q.shape[0], q.shape[1], q.shape[2]);
        var s = k.shape[1];
        var hd = d / heads;
        var qh = q.view(b, t, heads, hd).transpose(1, 2);                             // (B, h, T, hd)
        var kh = k.view(b, s, heads, hd).transpose(1, 2);                             // (B, h, S, hd)
        var vh = v.view(b, s, heads, hd).transpose(1, 2);                             // (B, h, S, hd)
        var y = nn.functional.scaled_dot_product_attention(qh, kh, vh, mask, dropout); // (B, h, T, hd)
        return y.transpose(1, 2).reshape(b, t, d).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Self-attention with one fused <c>qkv</c> projection and an output <c>proj</c>: DINOv2's <c>Attention</c> and
/// timm's (the DiT's), which compute the same softmax(q·kᵀ/√d)·v.
/// </summary>
internal sealed class FusedSelfAttention : nn.Module<Tensor, Tensor>
{
    private readonly Linear qkv, proj;
    private readonly long heads;

    public FusedSelfAttention(string name, long dim, long heads) : base(name)
    {
        if (dim % heads != 0) throw new ArgumentException($"width {dim} is not divisible by {heads} heads");
        qkv = nn.Linear(dim, 3 * dim);
        proj = nn.Linear(dim, dim);
        this.heads = heads;
        RegisterComponents();
    }

    /// <param name="x">(B, N, D) tokens.</param>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // Upstream reshapes qkv to (B, N, 3, h, hd): the three thirds of the last dimension are q, k and v.
        var parts = qkv.call(x).chunk(3, -1);                 // 3 × (B, N, D)
        var y = MultiHead.Attend(parts[0], parts[1], parts[2], heads);
        return proj.call(y).MoveToOuterDisposeScope();       // (B, N, D)
    }
}

/// <summary>DINOv2's LayerScale: multiplies each channel by a learned <c>gamma</c>.</summary>
internal sealed class LayerScale : nn.Module<Tensor, Tensor>
{
    private readonly Parameter gamma;

    public LayerScale(string name, long dim, double initValue) : base(name)
    {
        gamma = nn.Parameter(full(dim, initValue));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => x * gamma;
}

/// <summary>Upstream's weight initialisations, applied to every <see cref="Linear"/> of a module tree like <c>Module.apply</c>.</summary>
internal static class HeadInit
{
    /// <summary>Initialises each Linear's weight with <paramref name="weight"/> and zeroes its bias.</summary>
    public static void Linears(nn.Module root, Action<Tensor> weight)
    {
        using var _ = no_grad();
        foreach (var module in root.modules())
        {
            if (module is not Linear linear) continue;
            weight(linear.weight!);
            if (linear.bias is { } bias) nn.init.zeros_(bias);
        }
    }
}
