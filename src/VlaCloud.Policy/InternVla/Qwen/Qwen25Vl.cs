using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using VlaCloud.Policy.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy.InternVla.Qwen;

/// <summary>
/// One batch of prompts as the Qwen2.5-VL processor makes them.
/// </summary>
/// <param name="InputIds">(B, L) token ids, left padded; each image is <c>&lt;|vision_start|&gt;</c>, t·h·w / merge²
/// image tokens, <c>&lt;|vision_end|&gt;</c>.</param>
/// <param name="AttentionMask">(B, L) 1 for tokens, 0 for padding; null when nothing is padded.</param>
/// <param name="PixelValues">(N, C·T·P·P) patches of every image of the batch, in the order the images appear
/// (row after row); null for text-only prompts.</param>
/// <param name="ImageGridThw">(images, 3) each image's (t, h, w) patch grid, with <paramref name="PixelValues"/>.</param>
public sealed record QwenInputs(Tensor InputIds, Tensor? AttentionMask = null, Tensor? PixelValues = null, Tensor? ImageGridThw = null);

/// <summary>Which logits a forward pass computes.</summary>
public enum QwenLogits
{
    /// <summary>None (hidden states only).</summary>
    None,
    /// <summary>(B, L, V): every position.</summary>
    All,
    /// <summary>(B, 1, V): the last position only, what decoding needs.</summary>
    LastToken,
}

/// <summary>What a forward pass returns besides the last hidden state.</summary>
public sealed record QwenForwardOptions
{
    /// <summary>
    /// Indexes of transformers' <c>hidden_states</c> tuple to return: 0 = the input embeddings (images scattered in),
    /// k = the output of decoder layer k − 1, <c>num_hidden_layers</c> = after the final norm (which is also the last
    /// hidden state; InternVLA-M1 reads <c>hidden_states[36:37]</c> of the 36-layer model, i.e. this one).
    /// Only these are kept, so asking for one layer of a 3B model does not hold all 37.
    /// </summary>
    public IReadOnlyCollection<int> HiddenStates { get; init; } = [];

    /// <summary>Which logits to compute.</summary>
    public QwenLogits Logits { get; init; } = QwenLogits.None;
}

/// <summary>
/// The result of <see cref="Qwen25Vl.Forward"/>. Its tensors belong to the caller's dispose scope (if any);
/// <see cref="Dispose"/> frees them at once.
/// </summary>
public sealed class QwenOutput : IDisposable
{
    internal QwenOutput(Tensor lastHiddenState, IReadOnlyDictionary<int, Tensor> hiddenStates, Tensor? logits, Tensor ropeDeltas)
    {
        LastHiddenState = lastHiddenState;
        HiddenStates = hiddenStates;
        Logits = logits;
        RopeDeltas = ropeDeltas;
    }

    /// <summary>(B, L, D) after the final norm.</summary>
    public Tensor LastHiddenState { get; }

    /// <summary>The requested entries of transformers' <c>hidden_states</c> tuple, by index, each (B, L, D).</summary>
    public IReadOnlyDictionary<int, Tensor> HiddenStates { get; }

    /// <summary>(B, L, V) or (B, 1, V) logits when requested.</summary>
    public Tensor? Logits { get; }

    /// <summary>(B, 1) largest M-RoPE position + 1 − row length: added to the cache position of decoded tokens.</summary>
    public Tensor RopeDeltas { get; }

    /// <summary>Frees the tensors.</summary>
    public void Dispose()
    {
        foreach (var t in HiddenStates.Values.Append(LastHiddenState).Append(RopeDeltas).Concat(Logits is null ? [] : [Logits]).Distinct())
            t.Dispose();
    }
}

/// <summary>Greedy decoding settings (transformers' <c>generate(do_sample=False)</c>).</summary>
public sealed record QwenGenerationOptions
{
    /// <summary>Tokens to add at most.</summary>
    public int MaxNewTokens { get; init; } = 128;

    /// <summary>Tokens that end a row; empty = only <see cref="MaxNewTokens"/> ends generation.</summary>
    public IReadOnlyCollection<long> EosTokenIds { get; init; } = [];

    /// <summary>Written after a row has ended while others go on; the first EOS id when null (as transformers does).</summary>
    public long? PadTokenId { get; init; }

    /// <summary>Decode with the KV cache (true), or recompute the whole sequence every step (for checking the cache).</summary>
    public bool UseCache { get; init; } = true;
}

/// <summary>
/// Qwen2.5-VL (transformers' <c>Qwen2_5_VLForConditionalGeneration</c>) in TorchSharp: the vision tower and the Qwen2.5
/// decoder under <c>model.visual</c> / <c>model.language_model</c>, and <c>lm_head</c> (the token embedding when the
/// config ties them), so <c>named_parameters()</c> are transformers' in-memory names. Sizes come from
/// <see cref="Qwen25VlConfig"/>; weights from <see cref="Qwen25VlCheckpoint"/>. Its forward is one pass over a batch
/// (<see cref="Forward"/>); <see cref="Generate"/>, <see cref="EncodeImages"/> and <see cref="RopeIndex"/> are the other
/// entry points. Used by one thread at a time.
/// </summary>
public sealed class Qwen25Vl : nn.Module<QwenInputs, QwenForwardOptions?, QwenOutput>
{
    [ComponentName(Name = "model")] private readonly Qwen25VlBackbone backbone;
    // Null when tied: the logits then reuse the embedding, which is how transformers ties them (one tensor).
    [ComponentName(Name = "lm_head")] private readonly Linear? lmHead;

    private Qwen25Vl(Qwen25VlConfig config, Device? device, ScalarType? dtype) : base("qwen2_5_vl")
    {
        Config = config;
        backbone = new Qwen25VlBackbone("model", config, device, dtype);
        if (!config.Text.TieWordEmbeddings)
            lmHead = nn.Linear(config.Text.HiddenSize, config.Text.VocabSize, hasBias: false, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>
    /// A model with TorchSharp's default initialisation (load weights with <see cref="Qwen25VlCheckpoint"/>), built
    /// directly on <paramref name="device"/> in <paramref name="dtype"/> (float32 by default). On the meta device it
    /// holds shapes only, which is how a checkpoint is checked before anything is allocated.
    /// </summary>
    public static Qwen25Vl Create(Qwen25VlConfig config, Device? device = null, ScalarType? dtype = null)
    {
        config.Validate();
        using var _ = no_grad();
        var model = new Qwen25Vl(config, device, dtype);
        model.eval();
        return model;
    }

    /// <summary>The sizes.</summary>
    public Qwen25VlConfig Config { get; }

    /// <summary>Where the weights are.</summary>
    public Device Device => backbone.LanguageModel.EmbeddingWeight.device;

    /// <summary>The weights' dtype.</summary>
    public ScalarType DType => backbone.LanguageModel.EmbeddingWeight.dtype;

    /// <summary>Number of weights (a tied head counted once).</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    /// <summary>
    /// One forward pass over a batch: image embeddings scattered into the image tokens, M-RoPE positions from the
    /// ids, grid and padding, the decoder with a causal mask that also hides padding. Runs with autograd unless the
    /// caller turned it off, so it serves training as well as inference.
    /// </summary>
    /// <exception cref="ArgumentException">inputs that do not fit together or the config (message says which).</exception>
    public QwenOutput Forward(QwenInputs inputs, QwenForwardOptions? options = null) => call(inputs, options);

    /// <summary>The module's forward: <see cref="Forward"/>.</summary>
    /// <param name="inputs">(B, L) ids, (B, L) mask, (N, C·T·P·P) patches with their (images, 3) grids.</param>
    /// <param name="options">Hidden states and logits to return; none besides the last hidden state when null.</param>
    /// <returns>(B, L, D) last hidden state, the asked (B, L, D) hidden states, (B, L | 1, V) logits, (B, 1) rope deltas.</returns>
    public override QwenOutput forward(QwenInputs inputs, QwenForwardOptions? options)
    {
        options ??= new QwenForwardOptions();
        if (options.HiddenStates.Any(i => i < 0 || i > Config.Text.NumHiddenLayers))
            throw new ArgumentException($"hidden state indexes run from 0 to {Config.Text.NumHiddenLayers}");
        using var scope = NewDisposeScope();
        var prompt = Prepare(inputs);
        var kept = new Dictionary<int, Tensor>();
        var (hidden, deltas) = Prefill(prompt, cache: null, options.HiddenStates, kept);
        Tensor? logits = options.Logits switch
        {
            QwenLogits.All => Logits(hidden),
            QwenLogits.LastToken => Logits(hidden.narrow(1, hidden.shape[1] - 1, 1)),
            _ => null,
        };
        return new QwenOutput(hidden.MoveToOuterDisposeScope(), kept.ToDictionary(p => p.Key, p => p.Value.MoveToOuterDisposeScope()),
            logits?.MoveToOuterDisposeScope(), deltas.MoveToOuterDisposeScope());
    }

    /// <summary>(N, C·T·P·P) patches and their grids → (N / merge², D) image embeddings in the processor's order.</summary>
    public Tensor EncodeImages(Tensor pixelValues, Tensor imageGridThw)
    {
        using var scope = NewDisposeScope();
        var grids = ReadGrids(pixelValues, imageGridThw);
        return backbone.Visual.call(HostUpload.ToDevice(pixelValues, Device), grids).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// M-RoPE positions (3, B, L) and deltas (B, 1) as transformers' <c>get_rope_index</c> computes them; without a
    /// grid the text-only rule applies (padding counts as position 1).
    /// </summary>
    public (Tensor PositionIds, Tensor RopeDeltas) RopeIndex(Tensor inputIds, Tensor? imageGridThw = null, Tensor? attentionMask = null)
    {
        var ids = Rows(inputIds, "input_ids");
        var mask = attentionMask is null ? null : Rows(attentionMask, "attention_mask");
        ImageGrid[]? grids = null;
        if (imageGridThw is not null)
        {
            // Without pixels, the grid is checked against the image tokens of the ids (merge² patches each).
            var patches = ids.Sum(r => r.LongCount(id => id == Config.ImageTokenId)) * Config.Vision.MergeUnit;
            grids = ImageGrid.Read(imageGridThw, patches, Config.Vision, "the image tokens of input_ids");
        }
        return RopeTensors(ids, mask, grids, CPU);
    }

    /// <summary>
    /// Greedy decoding, equal to transformers' <c>generate(do_sample=False)</c>: the prompt once (with images), then one
    /// token per step through the KV cache, positions continuing from <c>rope_deltas</c>, padding still hidden. A row
    /// that produced an EOS id gets the pad id from then on; decoding stops when every row has ended.
    /// </summary>
    /// <returns>(B, L + new) prompt and generated ids, on the CPU.</returns>
    public Tensor Generate(QwenInputs inputs, QwenGenerationOptions options)
    {
        if (options.MaxNewTokens < 1) throw new ArgumentException("MaxNewTokens must be at least 1");
        var pad = options.PadTokenId ?? (options.EosTokenIds.Count > 0 ? options.EosTokenIds.First() : 0);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var prompt = Prepare(inputs);
        using var cache = options.UseCache ? new KvCache(Config.Text.NumHiddenLayers) : null;
        var (hidden, deltas) = Prefill(prompt, cache, null, new Dictionary<int, Tensor>());
        var (sequences, mask) = (prompt.Ids, prompt.Mask);
        var unfinished = ones(sequences.shape[0], ScalarType.Bool, sequences.device);
        for (var step = 0; step < options.MaxNewTokens; step++)
        {
            // transformers takes the argmax of the last position's logits in float32.
            var next = Logits(hidden.narrow(1, hidden.shape[1] - 1, 1)).squeeze(1).to(float32).argmax(-1); // (B)
            if (options.EosTokenIds.Count > 0)
            {
                next = where(unfinished, next, full_like(next, pad));
                foreach (var eos in options.EosTokenIds) unfinished = unfinished & next.ne(eos);
            }
            sequences = cat([sequences, next.unsqueeze(1)], 1);
            mask = cat([mask, ones_like(next).unsqueeze(1)], 1);
            if (step == options.MaxNewTokens - 1 || !unfinished.any().item<bool>()) break;
            if (cache is null)
                (hidden, _) = Prefill(prompt with { Ids = sequences, Mask = mask }, null, null, new Dictionary<int, Tensor>());
            else
                hidden = Decode(next.unsqueeze(1), mask, deltas, cache);
        }
        return sequences.cpu().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Replaces every parameter of a model built on the meta device with the tensor <paramref name="load"/> returns for
    /// its name (which the model then owns), so loading never allocates, let alone initialises, weights it throws away.
    /// </summary>
    internal void Materialize(Func<string, Tensor> load)
    {
        using var noGrad = no_grad();
        foreach (var (path, module) in named_modules())
            foreach (var (name, old) in module.named_parameters(recurse: false).ToList())
            {
                using var values = load($"{path}.{name}");
                var loaded = new Parameter(values, old.requires_grad);
                switch (module, name)
                {
                    case (Linear linear, "weight"): linear.weight = loaded; break;
                    case (Linear linear, "bias"): linear.bias = loaded; break;
                    case (Conv3d conv, "weight"): conv.weight = loaded; break;
                    case (RmsNorm norm, "weight"): norm.Weight = loaded; break;
                    case (TokenEmbedding embedding, "weight"): embedding.Weight = loaded; break;
                    default: throw new InvalidOperationException($"{path}.{name} of {module.GetType().Name} cannot be loaded in place");
                }
            }
    }

    /// <summary>(…, D) → (…, V) through <c>lm_head</c> or, tied, the token embedding.</summary>
    internal Tensor Logits(Tensor hidden) =>
        lmHead is null ? nn.functional.linear(hidden, backbone.LanguageModel.EmbeddingWeight) : lmHead.call(hidden);

    /// <summary>
    /// A checked batch on the model's device. <see cref="HasMask"/>: the caller gave an attention mask, which (as in
    /// transformers) switches the M-RoPE positions to skipping padding; <see cref="Mask"/> is all ones otherwise.
    /// </summary>
    private sealed record Prompt(Tensor Ids, Tensor Mask, Tensor? Pixels, ImageGrid[]? Grids, bool HasMask);

    private Prompt Prepare(QwenInputs inputs)
    {
        var device = Device;
        var ids = inputs.InputIds;
        if (ids.dim() != 2 || ids.dtype is not (ScalarType.Int64 or ScalarType.Int32))
            throw new ArgumentException($"input_ids must be an integer (batch, length) tensor, not {ids.dtype} [{string.Join(", ", ids.shape)}]");
        if (ids.numel() == 0) throw new ArgumentException("input_ids is empty");
        if (ids.min().item<long>() < 0 || ids.max().item<long>() >= Config.Text.VocabSize)
            throw new ArgumentException($"input_ids hold ids outside the vocabulary of {Config.Text.VocabSize}");
        Tensor mask;
        if (inputs.AttentionMask is { } given)
        {
            if (!given.shape.SequenceEqual(ids.shape)) throw new ArgumentException($"attention_mask [{string.Join(", ", given.shape)}] differs from input_ids [{string.Join(", ", ids.shape)}]");
            mask = given.to(int64);
            if (mask.ne(0).logical_and(mask.ne(1)).any().item<bool>()) throw new ArgumentException("attention_mask holds values other than 0 and 1");
        }
        else mask = ones_like(ids, int64);

        if (ids.eq(Config.VideoTokenId).any().item<bool>()) throw new ArgumentException("input_ids hold video tokens; videos are not supported");
        var imageTokens = ids.eq(Config.ImageTokenId).sum().item<long>();
        ImageGrid[]? grids = null;
        if (inputs.PixelValues is { } pixels)
        {
            if (inputs.ImageGridThw is null) throw new ArgumentException("pixel_values come without image_grid_thw");
            grids = ReadGrids(pixels, inputs.ImageGridThw);
            var merged = pixels.shape[0] / Config.Vision.MergeUnit;
            if (merged != imageTokens)
                throw new ArgumentException($"the images make {merged} image embeddings but input_ids hold {imageTokens} image tokens");
        }
        else if (inputs.ImageGridThw is not null || imageTokens > 0)
            throw new ArgumentException("input_ids hold image tokens (or an image grid is given) but there are no pixel_values");
        return new Prompt(HostUpload.ToDevice(ids, device, int64), HostUpload.ToDevice(mask, device),
            inputs.PixelValues is { } hostPixels ? HostUpload.ToDevice(hostPixels, device) : null, grids, inputs.AttentionMask is not null);
    }

    private ImageGrid[] ReadGrids(Tensor pixels, Tensor imageGridThw)
    {
        if (pixels.dim() != 2 || pixels.shape[1] != Config.Vision.PatchValues || !pixels.is_floating_point())
            throw new ArgumentException($"pixel_values must be a float (patches, {Config.Vision.PatchValues}) tensor, not {pixels.dtype} [{string.Join(", ", pixels.shape)}]");
        return ImageGrid.Read(imageGridThw, pixels.shape[0], Config.Vision);
    }

    /// <summary>The whole prompt (images included) through the decoder; fills the cache when given.</summary>
    private (Tensor Hidden, Tensor Deltas) Prefill(Prompt prompt, KvCache? cache, IReadOnlyCollection<int>? keep, IDictionary<int, Tensor> kept)
    {
        using var scope = NewDisposeScope();
        var lm = backbone.LanguageModel;
        var embeds = lm.Embed(prompt.Ids); // (B, L, D)
        if (prompt.Pixels is not null)
        {
            var images = backbone.Visual.call(prompt.Pixels, prompt.Grids!).to(embeds.dtype);    // (N / unit, D)
            var slots = prompt.Ids.eq(Config.ImageTokenId).unsqueeze(-1).expand_as(embeds);
            embeds = embeds.masked_scatter(slots, images);
        }
        var (positions, deltas) = RopePositions(prompt);
        var mask = AttentionMask(prompt.Mask, past: 0, queries: prompt.Ids.shape[1], embeds.dtype);
        var layerStates = new Dictionary<int, Tensor>();
        var hidden = lm.call(embeds, positions, mask, cache, keep, layerStates);                 // (B, L, D)
        foreach (var (index, state) in layerStates) kept[index] = state.MoveToOuterDisposeScope();
        return (hidden.MoveToOuterDisposeScope(), deltas.MoveToOuterDisposeScope());
    }

    /// <summary>New tokens (B, T) after the cached ones; their positions are cache position + rope delta on all three axes.</summary>
    private Tensor Decode(Tensor ids, Tensor mask, Tensor deltas, KvCache cache)
    {
        using var scope = NewDisposeScope();
        var (batch, count) = (ids.shape[0], ids.shape[1]);
        var past = mask.shape[1] - count;
        var positions = (arange(past, past + count, dtype: int64, device: ids.device).unsqueeze(0) + deltas).unsqueeze(0).expand(3, batch, count); // (3, B, T)
        var embeds = backbone.LanguageModel.Embed(ids);
        var attention = AttentionMask(mask, past, count, embeds.dtype);
        return backbone.LanguageModel.call(embeds, positions, attention, cache, null, new Dictionary<int, Tensor>()).MoveToOuterDisposeScope(); // (B, T, D)
    }

    private (Tensor Positions, Tensor Deltas) RopePositions(Prompt prompt) =>
        RopeTensors(Rows(prompt.Ids, "input_ids"), prompt.HasMask ? Rows(prompt.Mask, "attention_mask") : null, prompt.Grids, prompt.Ids.device);

    /// <summary>M-RoPE positions (3, B, L) and deltas (B, 1) on a device, computed on the CPU from plain arrays.</summary>
    private (Tensor Positions, Tensor Deltas) RopeTensors(long[][] ids, long[][]? mask, ImageGrid[]? grids, Device device)
    {
        var (positions, deltas) = MropeIndex.Compute(ids, mask, grids, Config);
        var flat = positions.SelectMany(axis => axis.SelectMany(row => row)).ToArray();
        return (tensor(flat, [3, ids.Length, ids.Length == 0 ? 0 : ids[0].Length], device: device), tensor(deltas, [deltas.Length, 1], device: device));
    }

    /// <summary>
    /// (B, 1, T, Tk) additive mask: query i (at cache position past + i) sees keys at positions ≤ its own that are not
    /// padding. Hidden entries hold the dtype's most negative finite value, as transformers' eager path does, so a
    /// padding row (nothing visible) averages over all keys exactly as upstream instead of producing NaN.
    /// </summary>
    private static Tensor AttentionMask(Tensor padding, long past, long queries, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var device = padding.device;
        var keys = arange(padding.shape[1], dtype: int64, device: device).view(1, 1, -1);                  // (1, 1, Tk)
        var positions = arange(past, past + queries, dtype: int64, device: device).view(1, -1, 1);          // (1, T, 1)
        var visible = keys.le(positions).logical_and(padding.ne(0).unsqueeze(1));                            // (B, T, Tk)
        var mask = zeros(visible.shape, dtype, device).masked_fill(visible.logical_not(), finfo(dtype).min);
        return mask.unsqueeze(1).MoveToOuterDisposeScope();                                                  // (B, 1, T, Tk)
    }

    private static long[][] Rows(Tensor t, string name)
    {
        if (t.dim() != 2 || t.dtype is not (ScalarType.Int64 or ScalarType.Int32))
            throw new ArgumentException($"{name} must be an integer (batch, length) tensor, not {t.dtype} [{string.Join(", ", t.shape)}]");
        var (b, l) = ((int)t.shape[0], (int)t.shape[1]);
        var flat = t.cpu().to(int64).data<long>().ToArray();
        return [.. Enumerable.Range(0, b).Select(r => flat.AsSpan(r * l, l).ToArray())];
    }
}

/// <summary>transformers' <c>Qwen2_5_VLModel</c>: the container that puts the tower and the decoder under <c>model.</c>.</summary>
internal sealed class Qwen25VlBackbone : nn.Module
{
    private readonly QwenVisionTransformer visual;
    [ComponentName(Name = "language_model")] private readonly QwenTextModel languageModel;

    public Qwen25VlBackbone(string name, Qwen25VlConfig c, Device? device, ScalarType? dtype) : base(name)
    {
        visual = new QwenVisionTransformer("visual", c.Vision, device, dtype);
        languageModel = new QwenTextModel("language_model", c.Text, device, dtype);
        RegisterComponents();
    }

    public QwenVisionTransformer Visual => visual;
    public QwenTextModel LanguageModel => languageModel;
}
