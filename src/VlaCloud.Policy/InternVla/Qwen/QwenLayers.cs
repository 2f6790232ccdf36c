using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace VlaCloud.Policy.InternVla.Qwen;

// Component names in this folder are transformers' attribute names, so named_parameters() yields the names of
// transformers' in-memory state dict (model.visual.blocks.0.attn.qkv.weight, …) and checkpoints map onto them.

/// <summary>Gated MLP <c>down(silu(gate(x)) · up(x))</c>: with biases in the vision blocks, without in the decoder.</summary>
internal sealed class QwenMlp : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "gate_proj")] private readonly Linear gateProj;
    [ComponentName(Name = "up_proj")] private readonly Linear upProj;
    [ComponentName(Name = "down_proj")] private readonly Linear downProj;

    public QwenMlp(string name, long dim, long hidden, bool bias, Device? device, ScalarType? dtype) : base(name)
    {
        gateProj = nn.Linear(dim, hidden, hasBias: bias, device: device, dtype: dtype);
        upProj = nn.Linear(dim, hidden, hasBias: bias, device: device, dtype: dtype);
        downProj = nn.Linear(hidden, dim, hasBias: bias, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => downProj.call(nn.functional.silu(gateProj.call(x)) * upProj.call(x));
}

/// <summary>
/// Token embedding (<c>embed_tokens.weight</c>, N(0, 1) initialised like <c>nn.Embedding</c>). TorchSharp's own
/// <c>nn.Embedding</c> is built and initialised on the CPU before it moves to its device, which for a 151,936 × 2,048
/// vocabulary costs 1.2 GB and many seconds even on the meta device; this one is created where it lives.
/// </summary>
internal sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    private Parameter weight;

    public TokenEmbedding(string name, long vocabulary, long dim, Device? device, ScalarType? dtype) : base(name)
    {
        weight = nn.Parameter(empty(vocabulary, dim, dtype: dtype, device: device));
        using (no_grad()) weight.normal_();
        RegisterComponents();
    }

    /// <summary>The (V, D) table; settable so a module built on the meta device can take loaded weights.</summary>
    public Parameter Weight
    {
        get => weight;
        set
        {
            weight = value;
            ConditionallyRegisterParameter(nameof(weight), value);
        }
    }

    /// <param name="ids">(…) token ids.</param>
    /// <returns>(…, D).</returns>
    public override Tensor forward(Tensor ids) => weight.index_select(0, ids.flatten()).view([.. ids.shape, weight.shape[1]]);
}

/// <summary>
/// Attention as transformers' eager Qwen2.5-VL paths compute it: scores divided by √d, an additive mask, softmax in
/// float32 cast back, then the values. Matching the eager order keeps float32 within the fixtures' 1e-4 and bf16
/// rounding where upstream rounds.
/// </summary>
internal static class EagerAttention
{
    /// <param name="q">(…, h, Tq, hd) queries.</param>
    /// <param name="k">(…, h, Tk, hd) keys.</param>
    /// <param name="v">(…, h, Tk, hd) values.</param>
    /// <param name="mask">additive mask broadcastable to (…, h, Tq, Tk), or null.</param>
    /// <returns>(…, h, Tq, hd).</returns>
    public static Tensor Attend(Tensor q, Tensor k, Tensor v, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        var scores = q.matmul(k.transpose(-2, -1)) / Math.Sqrt(q.shape[^1]); // (…, h, Tq, Tk)
        if (mask is not null) scores = scores + mask;
        var weights = nn.functional.softmax(scores, -1, float32).to(q.dtype);
        return weights.matmul(v).MoveToOuterDisposeScope();
    }
}
