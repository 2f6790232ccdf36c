using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using VlaCloud.Policy.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy.InternVla.Qwen;

/// <summary>
/// Decoder self-attention: q/k/v with biases, o without, grouped-query attention (each key/value head serves
/// heads / kv_heads query heads), M-RoPE on queries and keys, and an optional KV cache.
/// </summary>
internal sealed class QwenTextAttention : nn.Module<Tensor, Tensor, Tensor, Tensor, KvCache?, int, Tensor>
{
    [ComponentName(Name = "q_proj")] private readonly Linear qProj;
    [ComponentName(Name = "k_proj")] private readonly Linear kProj;
    [ComponentName(Name = "v_proj")] private readonly Linear vProj;
    [ComponentName(Name = "o_proj")] private readonly Linear oProj;
    private readonly long heads, kvHeads, headDim;

    public QwenTextAttention(string name, QwenTextConfig c, Device? device, ScalarType? dtype) : base(name)
    {
        (heads, kvHeads, headDim) = (c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim);
        qProj = nn.Linear(c.HiddenSize, heads * headDim, hasBias: true, device: device, dtype: dtype);
        kProj = nn.Linear(c.HiddenSize, kvHeads * headDim, hasBias: true, device: device, dtype: dtype);
        vProj = nn.Linear(c.HiddenSize, kvHeads * headDim, hasBias: true, device: device, dtype: dtype);
        oProj = nn.Linear(heads * headDim, c.HiddenSize, hasBias: false, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <param name="x">(B, T, D) normalised hidden states.</param>
    /// <param name="cos">(B, 1, T, hd) M-RoPE table.</param>
    /// <param name="sin">(B, 1, T, hd) M-RoPE table.</param>
    /// <param name="mask">(B, 1, T, Tk) additive mask over the cached and new keys.</param>
    /// <param name="cache">when given, this call's keys/values are appended and attention runs over all of them.</param>
    /// <param name="layer">this layer's slot in the cache.</param>
    public override Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor mask, KvCache? cache, int layer)
    {
        using var scope = NewDisposeScope();
        var (b, t) = (x.shape[0], x.shape[1]);
        var q = qProj.call(x).view(b, t, heads, headDim).transpose(1, 2);   // (B, h, T, hd)
        var k = kProj.call(x).view(b, t, kvHeads, headDim).transpose(1, 2); // (B, kv, T, hd)
        var v = vProj.call(x).view(b, t, kvHeads, headDim).transpose(1, 2); // (B, kv, T, hd)
        q = Rotary.Apply(q, cos, sin);
        k = Rotary.Apply(k, cos, sin);
        if (cache is not null) (k, v) = cache.Append(layer, k, v);          // (B, kv, Tk, hd)
        var y = EagerAttention.Attend(q, RepeatKv(k), RepeatKv(v), mask);   // (B, h, T, hd)
        return oProj.call(y.transpose(1, 2).reshape(b, t, heads * headDim)).MoveToOuterDisposeScope();
    }

    /// <summary>(B, kv, T, hd) → (B, h, T, hd): each key/value head repeated for its group of query heads.</summary>
    private Tensor RepeatKv(Tensor x)
    {
        var groups = heads / kvHeads;
        if (groups == 1) return x;
        var (b, t) = (x.shape[0], x.shape[2]);
        return x.unsqueeze(2).expand(b, kvHeads, groups, t, headDim).reshape(b, heads, t, headDim);
    }
}

/// <summary>Pre-norm decoder layer: RMSNorm → attention → residual, RMSNorm → SwiGLU → residual.</summary>
internal sealed class QwenDecoderLayer : nn.Module<Tensor, Tensor, Tensor, Tensor, KvCache?, int, Tensor>
{
    [ComponentName(Name = "self_attn")] private readonly QwenTextAttention selfAttn;
    private readonly QwenMlp mlp;
    [ComponentName(Name = "input_layernorm")] private readonly RmsNorm inputLayernorm;
    [ComponentName(Name = "post_attention_layernorm")] private readonly RmsNorm postAttentionLayernorm;

    public QwenDecoderLayer(string name, QwenTextConfig c, Device? device, ScalarType? dtype) : base(name)
    {
        selfAttn = new QwenTextAttention("self_attn", c, device, dtype);
        mlp = new QwenMlp("mlp", c.HiddenSize, c.IntermediateSize, bias: false, device, dtype);
        inputLayernorm = new RmsNorm("input_layernorm", c.HiddenSize, c.RmsNormEps, device, dtype);
        postAttentionLayernorm = new RmsNorm("post_attention_layernorm", c.HiddenSize, c.RmsNormEps, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor mask, KvCache? cache, int layer)
    {
        using var scope = NewDisposeScope();
        x = x + selfAttn.call(inputLayernorm.call(x), cos, sin, mask, cache, layer);
        x = x + mlp.call(postAttentionLayernorm.call(x));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>The Qwen2.5 decoder: token embedding, layers, final RMSNorm (transformers' <c>Qwen2_5_VLTextModel</c>).</summary>
internal sealed class QwenTextModel : nn.Module<Tensor, Tensor, Tensor, KvCache?, IReadOnlyCollection<int>?, IDictionary<int, Tensor>, Tensor>
{
    [ComponentName(Name = "embed_tokens")] private readonly TokenEmbedding embedTokens;
    private readonly ModuleList<QwenDecoderLayer> layers;
    private readonly RmsNorm norm;
    private readonly QwenTextConfig config;

    public QwenTextModel(string name, QwenTextConfig c, Device? device, ScalarType? dtype) : base(name)
    {
        config = c;
        embedTokens = new TokenEmbedding("embed_tokens", c.VocabSize, c.HiddenSize, device, dtype);
        layers = nn.ModuleList(Enumerable.Range(0, c.NumHiddenLayers).Select(i => new QwenDecoderLayer($"{i}", c, device, dtype)).ToArray());
        norm = new RmsNorm("norm", c.HiddenSize, c.RmsNormEps, device, dtype);
        RegisterComponents();
    }

    /// <summary>The (V, D) token embedding, which is also the output head when the config ties them.</summary>
    public Parameter EmbeddingWeight => embedTokens.Weight;

    /// <summary>(B, T) ids → (B, T, D).</summary>
    public Tensor Embed(Tensor ids) => embedTokens.call(ids);

    /// <param name="x">(B, T, D) input embeddings.</param>
    /// <param name="positions">(3, B, T) temporal/height/width positions.</param>
    /// <param name="mask">(B, 1, T, Tk) additive mask.</param>
    /// <param name="cache">filled with this call's keys/values when given.</param>
    /// <param name="keep">indexes of transformers' <c>hidden_states</c> tuple to return (0 = embeddings, k = after
    /// layer k − 1, the last = after the final norm).</param>
    /// <param name="kept">receives the kept hidden states (handles of their own), owned by the caller's dispose scope.</param>
    /// <returns>(B, T, D) hidden states after the final norm.</returns>
    public override Tensor forward(Tensor x, Tensor positions, Tensor mask, KvCache? cache, IReadOnlyCollection<int>? keep, IDictionary<int, Tensor> kept)
    {
        using var scope = NewDisposeScope();
        var (cos, sin) = MropeTables(positions, x.dtype);
        // An alias is a new handle on the same values, created in this scope: it moves out exactly once, whoever owns x.
        void Keep(int index, Tensor h)
        {
            if (keep?.Contains(index) == true) kept[index] = h.alias().MoveToOuterDisposeScope();
        }
        for (var i = 0; i < layers.Count; i++)
        {
            Keep(i, x);
            x = layers[i].call(x, cos, sin, mask, cache, i);
        }
        x = norm.call(x);
        Keep(layers.Count, x);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// M-RoPE cos/sin (B, 1, T, hd): the angles of all three position axes in float32, cast to the model's dtype, then
    /// frequency pairs taken section by section from the temporal, height and width axis (<c>mrope_section</c>, the
    /// second half of the head repeating the first).
    /// </summary>
    private (Tensor Cos, Tensor Sin) MropeTables(Tensor positions, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var inverse = Rotary.InverseFrequencies(config.HeadDim, config.RopeTheta, positions.device); // (hd/2)
        var angles = positions.to(float32).unsqueeze(-1) * inverse;                                  // (3, B, T, hd/2)
        var full = cat([angles, angles], -1);                                                        // (3, B, T, hd)
        var sections = config.MropeSection.Concat(config.MropeSection).Select(s => (long)s).ToArray();
        Tensor Select(Tensor table) => cat(table.split(sections, -1).Select((chunk, i) => chunk[i % 3]).ToArray(), -1).unsqueeze(1); // (B, 1, T, hd)
        return (Select(full.cos().to(dtype)).MoveToOuterDisposeScope(), Select(full.sin().to(dtype)).MoveToOuterDisposeScope());
    }
}

/// <summary>
/// M-RoPE positions (transformers' <c>get_rope_index</c>): text tokens advance all three axes together; the merged
/// tokens of an image take (t, h, w) of their place in the merged grid, offset to follow the text before them (the
/// temporal index of an image is always 0); text after an image continues from the largest position + 1. Padding
/// (attention mask ≠ 1) is skipped and gets position 1. <c>rope_deltas</c> = largest position + 1 − row length is
/// what decoding adds to the cache position of each new token.
/// </summary>
internal static class MropeIndex
{
    /// <param name="ids">(B, L) token ids.</param>
    /// <param name="mask">(B, L) attention mask, or null for no padding.</param>
    /// <param name="grids">image grids in the order the images appear (row after row); null when the batch has no images.</param>
    /// <param name="config">token ids and merge size.</param>
    /// <returns>positions [3][B][L] and deltas [B].</returns>
    public static (long[][][] Positions, long[] Deltas) Compute(long[][] ids, long[][]? mask, IReadOnlyList<ImageGrid>? grids, Qwen25VlConfig config)
    {
        var (batch, length) = (ids.Length, ids.Length == 0 ? 0 : ids[0].Length);
        var positions = Enumerable.Range(0, 3).Select(_ => Enumerable.Range(0, batch).Select(_ => new long[length]).ToArray()).ToArray();
        var deltas = new long[batch];
        if (grids is null)
        {
            // transformers' text-only branch: positions count the attended tokens; padding takes 1 and counts in the maximum.
            for (var b = 0; b < batch; b++)
            {
                long seen = 0, max = long.MinValue;
                for (var j = 0; j < length; j++)
                {
                    var p = mask is null ? j : mask[b][j] == 1 ? seen++ : 1;
                    for (var axis = 0; axis < 3; axis++) positions[axis][b][j] = p;
                    max = Math.Max(max, p);
                }
                deltas[b] = mask is null ? 0 : max + 1 - length;
            }
            return (positions, deltas);
        }

        var merge = config.Vision.SpatialMergeSize;
        var imageIndex = 0;
        for (var b = 0; b < batch; b++)
        {
            var columns = Enumerable.Range(0, length).Where(j => mask is null || mask[b][j] == 1).ToArray();
            if (columns.Length == 0) throw new ArgumentException($"input row {b} has no attended tokens");
            var tokens = columns.Select(j => ids[b][j]).ToArray();
            var images = 0;
            for (var j = 0; j < tokens.Length; j++)
            {
                if (tokens[j] != config.VisionStartTokenId) continue;
                if (j + 1 == tokens.Length) throw new ArgumentException($"input row {b} ends with a vision-start token");
                if (tokens[j + 1] == config.VideoTokenId) throw new ArgumentException($"input row {b} holds a video; videos are not supported");
                if (tokens[j + 1] == config.ImageTokenId) images++;
            }

            var (t, h, w) = (new List<long>(tokens.Length), new List<long>(tokens.Length), new List<long>(tokens.Length));
            void Add(long pt, long ph, long pw) { t.Add(pt); h.Add(ph); w.Add(pw); }
            long start = 0, lastChunkMax = -1;
            for (var image = 0; image < images; image++)
            {
                var end = Array.IndexOf(tokens, config.ImageTokenId, (int)start);
                if (end < 0) throw new ArgumentException($"input row {b}: image {image} has no image tokens");
                if (imageIndex >= grids.Count) throw new ArgumentException($"input_ids hold more images than image_grid_thw has rows ({grids.Count})");
                var grid = grids[imageIndex++];
                var (gridH, gridW) = (grid.H / merge, grid.W / merge);
                var tokenCount = grid.T * gridH * gridW;
                if (end + tokenCount > tokens.Length || tokens.Skip(end).Take((int)tokenCount).Any(id => id != config.ImageTokenId))
                    throw new ArgumentException($"input row {b}: image {image} needs {tokenCount} consecutive image tokens (grid [{grid.T}, {grid.H}, {grid.W}] merged by {merge})");
                var text = end - start;
                var offset = lastChunkMax + 1;
                for (var k = 0; k < text; k++) Add(offset + k, offset + k, offset + k);
                for (var f = 0; f < grid.T; f++)
                    for (var y = 0; y < gridH; y++)
                        for (var x = 0; x < gridW; x++) Add(offset + text, offset + text + y, offset + text + x);
                lastChunkMax = offset + text + Math.Max(gridH, gridW) - 1;
                start = end + tokenCount;
            }
            for (long k = 0, offset = lastChunkMax + 1; start + k < tokens.Length; k++) Add(offset + k, offset + k, offset + k);

            for (var j = 0; j < length; j++) positions[0][b][j] = positions[1][b][j] = positions[2][b][j] = 1;
            for (var i = 0; i < columns.Length; i++)
                (positions[0][b][columns[i]], positions[1][b][columns[i]], positions[2][b][columns[i]]) = (t[i], h[i], w[i]);
            deltas[b] = t.Concat(h).Concat(w).Max() + 1 - length;
        }
        if (imageIndex != grids.Count)
            throw new ArgumentException($"image_grid_thw has {grids.Count} rows but input_ids hold {imageIndex} images");
        return (positions, deltas);
    }
}
