using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Modules;

/// <summary>
/// Root-mean-square layer norm (no mean subtraction, no bias), as in Llama/Qwen (transformers' <c>Qwen2RMSNorm</c>):
/// the statistic is taken in float32 and the normalised value cast back before the weight scales it.
/// </summary>
internal sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private Parameter weight;
    private readonly double eps;

    public RmsNorm(string name, long dim, double eps = 1e-6, Device? device = null, ScalarType? dtype = null) : base(name)
    {
        weight = nn.Parameter(ones(dim, dtype: dtype, device: device));
        this.eps = eps;
        RegisterComponents();
    }

    /// <summary>The scale; settable (like <c>Linear.weight</c>) so a module built on the meta device can take loaded weights.</summary>
    public Parameter Weight
    {
        get => weight;
        set
        {
            weight = value;
            ConditionallyRegisterParameter(nameof(weight), value);
        }
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // Squares of bfloat16 activations lose most of their bits; float32 keeps bf16 models close to their fp32 selves.
        var wide = x.to(float32);
        var normalised = (wide * (wide.pow(2).mean([-1], keepdim: true) + eps).rsqrt()).to(x.dtype);
        return (weight * normalised).MoveToOuterDisposeScope();
    }
}

/// <summary>Gated MLP: down(silu(gate(x)) * up(x)).</summary>
internal sealed class SwiGlu : nn.Module<Tensor, Tensor>
{
    private readonly Linear gate, up, down;

    public SwiGlu(string name, long dim, long hidden) : base(name)
    {
        gate = nn.Linear(dim, hidden, hasBias: false);
        up = nn.Linear(dim, hidden, hasBias: false);
        down = nn.Linear(hidden, dim, hasBias: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => down.call(nn.functional.silu(gate.call(x)) * up.call(x));
}

/// <summary>
/// Two-layer GELU MLP (<c>fc1</c>, <c>fc2</c>) of the ViTs, the bridge and the DiTs. InternVLA-M1's DiT uses the tanh
/// approximation of GELU (as DiT does); DINOv2 and this project's own modules use the exact one.
/// </summary>
internal sealed class GeluMlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1, fc2;
    private readonly GELU.Approximate approximate;

    public GeluMlp(string name, long dim, long hidden, bool tanhApproximation = false) : base(name)
    {
        fc1 = nn.Linear(dim, hidden);
        fc2 = nn.Linear(hidden, dim);
        approximate = tanhApproximation ? GELU.Approximate.tanh : GELU.Approximate.none;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => fc2.call(nn.functional.gelu(fc1.call(x), approximate));
}

/// <summary>
/// Multi-head attention of queries <c>x</c> over a context (itself for self-attention), without
/// positions: the ViT, the bridge and the DiT use learned absolute positions instead.
/// </summary>
internal sealed class Attention : nn.Module<Tensor, Tensor, Tensor?, Tensor>
{
    private readonly Linear q, kv, proj;
    private readonly long heads;

    public Attention(string name, long dim, long heads, long? contextDim = null) : base(name)
    {
        if (dim % heads != 0) throw new ArgumentException($"width {dim} is not divisible by {heads} heads");
        q = nn.Linear(dim, dim);
        kv = nn.Linear(contextDim ?? dim, 2 * dim);
        proj = nn.Linear(dim, dim);
        this.heads = heads;
        RegisterComponents();
    }

    /// <param name="x">(B, T, D) queries.</param>
    /// <param name="context">(B, S, Dc) keys/values.</param>
    /// <param name="mask">optional additive mask broadcastable to (B, h, T, S).</param>
    public override Tensor forward(Tensor x, Tensor context, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        var (b, t, d) = (x.shape[0], x.shape[1], x.shape[2]);
        var s = context.shape[1];
        var hd = d / heads;
        var qh = q.call(x).view(b, t, heads, hd).transpose(1, 2);            // (B, h, T, hd)
        var kvh = kv.call(context).view(b, s, 2, heads, hd).permute(2, 0, 3, 1, 4); // (2, B, h, S, hd)
        var y = nn.functional.scaled_dot_product_attention(qh, kvh[0], kvh[1], mask); // (B, h, T, hd)
        return proj.call(y.transpose(1, 2).reshape(b, t, d)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The context's keys and values split into heads, (K (B, h, S, hd), V (B, h, S, hd)): a context that stays the same
    /// over many calls (the DiT's conditioning tokens over the denoising steps) is projected once.
    /// </summary>
    public (Tensor K, Tensor V) KeysValues(Tensor context)
    {
        var (b, s) = (context.shape[0], context.shape[1]);
        var hd = proj.weight!.shape[0] / heads;
        var kvh = kv.call(context).view(b, s, 2, heads, hd).permute(2, 0, 3, 1, 4);  // (2, B, h, S, hd)
        var both = kvh.unbind(0);
        return (both[0], both[1]);
    }

    /// <summary><see cref="forward"/> over keys and values from <see cref="KeysValues"/>: the same numbers, one projection fewer.</summary>
    public Tensor Attend(Tensor x, (Tensor K, Tensor V) context, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        var (b, t, d) = (x.shape[0], x.shape[1], x.shape[2]);
        var qh = q.call(x).view(b, t, heads, d / heads).transpose(1, 2);      // (B, h, T, hd)
        var y = nn.functional.scaled_dot_product_attention(qh, context.K, context.V, mask); // (B, h, T, hd)
        return proj.call(y.transpose(1, 2).reshape(b, t, d)).MoveToOuterDisposeScope();
    }
}

/// <summary>Rotary position embedding (RoPE) for per-sample integer positions.</summary>
internal static class Rotary
{
    /// <summary>cos/sin tables of shape (B, 1, T, hd) for positions (B, T).</summary>
    public static (Tensor Cos, Tensor Sin) Tables(Tensor positions, long headDim, double theta, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var inv = pow(theta, -arange(0, headDim, 2, dtype: float32, device: positions.device) / headDim); // (hd/2)
        var angles = positions.to(float32).unsqueeze(-1) * inv;                 // (B, T, hd/2)
        var full = cat([angles, angles], -1).unsqueeze(1);                       // (B, 1, T, hd)
        return (full.cos().to(dtype).MoveToOuterDisposeScope(), full.sin().to(dtype).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// <c>x·cos + rotate_half(x)·sin</c> over the last dimension (any leading dimensions; cos/sin broadcast to x).
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        var half = x.shape[^1] / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        return x * cos + cat([-x2, x1], -1) * sin;
    }

    /// <summary>
    /// The (dim/2) inverse frequencies <c>1 / theta^(2i/dim)</c> in float32, computed as transformers computes them
    /// (a power of the float32 exponents, then its reciprocal), so angles match upstream to the last bit.
    /// </summary>
    public static Tensor InverseFrequencies(long dim, double theta, Device? device = null) =>
        pow(theta, arange(0, dim, 2, dtype: int64, device: device).to(float32) / dim).reciprocal();
}

/// <summary>
/// Per-layer key/value cache for greedy decoding. Its tensors leave the (nested) dispose scopes of the
/// layers that fill it and are freed by <see cref="Dispose"/>.
/// </summary>
internal sealed class KvCache(int layers) : IDisposable
{
    private readonly Tensor?[] keys = new Tensor?[layers], values = new Tensor?[layers];

    /// <summary>Appends (B, h, T, hd) keys/values of one layer and returns the whole cache.</summary>
    public (Tensor K, Tensor V) Append(int layer, Tensor k, Tensor v)
    {
        var (oldK, oldV) = (keys[layer], values[layer]);
        var newK = (oldK is null ? k.alias() : cat([oldK, k], 2)).DetachFromDisposeScope();
        var newV = (oldV is null ? v.alias() : cat([oldV, v], 2)).DetachFromDisposeScope();
        oldK?.Dispose();
        oldV?.Dispose();
        (keys[layer], values[layer]) = (newK, newV);
        return (newK, newV);
    }

    public void Dispose()
    {
        foreach (var t in keys.Concat(values)) t?.Dispose();
    }
}

/// <summary>Identity forward, gradient × factor backward (the paper's gradient decay into the VLM).</summary>
internal static class GradientScale
{
    public static Tensor Apply(Tensor x, double factor)
    {
        if (factor == 1.0) return x;
        var frozen = x.detach();
        // (x - x.detach()) is exactly zero forward, so the forward value is x bit for bit.
        return frozen + (x - frozen) * factor;
    }
}
