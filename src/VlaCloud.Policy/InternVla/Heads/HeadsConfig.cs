using System.Text.Json.Nodes;

namespace VlaCloud.Policy.InternVla.Heads;

/// <summary>One parameter of a module as it appears in a state dict: its full dotted name and shape.</summary>
/// <param name="Name">Dotted name, e.g. <c>action_model.net.blocks.0.attn.qkv.weight</c>.</param>
/// <param name="Shape">Dimensions.</param>
public sealed record ParameterShape(string Name, long[] Shape)
{
    /// <summary>Elements in the tensor.</summary>
    public long Count => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary><c>name [d0, d1, …]</c>, so two listings compare as text.</summary>
    public override string ToString() => $"{Name} [{string.Join(", ", Shape)}]";

    internal static IEnumerable<ParameterShape> Linear(string name, long inFeatures, long outFeatures, bool bias = true)
    {
        yield return new($"{name}.weight", [outFeatures, inFeatures]);
        if (bias) yield return new($"{name}.bias", [outFeatures]);
    }

    internal static IEnumerable<ParameterShape> LayerNorm(string name, long dim) =>
        [new($"{name}.weight", [dim]), new($"{name}.bias", [dim])];
}

/// <summary>
/// The DINOv2 <c>DinoVisionTransformer</c> (facebookresearch/dinov2) as InternVLA-M1 builds it through
/// <c>torch.hub</c>: MLP feed-forward, LayerScale, no register tokens, bicubic position interpolation without
/// antialiasing. Field names follow the upstream constructor's arguments.
/// </summary>
public sealed record DinoConfig
{
    /// <summary><c>img_size</c>: the side the learned position grid was made for (518 for the hub models: 37 × 37 patches).</summary>
    public int ImageSize { get; init; } = 518;
    /// <summary><c>patch_size</c>.</summary>
    public int PatchSize { get; init; } = 14;
    /// <summary><c>embed_dim</c>: width of the tokens.</summary>
    public int EmbedDim { get; init; } = 384;
    /// <summary><c>depth</c>: transformer blocks.</summary>
    public int Depth { get; init; } = 12;
    /// <summary><c>num_heads</c>.</summary>
    public int NumHeads { get; init; } = 6;
    /// <summary><c>mlp_ratio</c>: MLP hidden width over <see cref="EmbedDim"/>.</summary>
    public double MlpRatio { get; init; } = 4;
    /// <summary><c>init_values</c>: LayerScale's initial value; null or 0 builds blocks without LayerScale (no <c>ls1</c>/<c>ls2</c>).</summary>
    public double? InitValues { get; init; } = 1.0;
    /// <summary><c>interpolate_offset</c>: added to the target grid side before it becomes a scale factor (0 interpolates to the size instead).</summary>
    public double InterpolateOffset { get; init; } = 0.1;
    /// <summary><c>interpolate_antialias</c>.</summary>
    public bool InterpolateAntialias { get; init; }

    /// <summary>Side of the learned position grid in patches (M, with M² + 1 positions).</summary>
    public int PositionGrid => ImageSize / PatchSize;

    /// <summary>MLP hidden width.</summary>
    public int MlpHidden => (int)(EmbedDim * MlpRatio);

    /// <summary><c>dinov2_vits14</c>, the stream of the released InternVLA-M1.</summary>
    public static DinoConfig VitS14 { get; } = new();

    /// <summary>The hub model of this name (<c>dinov2_vits14</c>, <c>dinov2_vitb14</c>, <c>dinov2_vitl14</c>; the giant one uses a SwiGLU FFN, which is not built here).</summary>
    public static DinoConfig Backbone(string name) => name switch
    {
        "dinov2_vits14" => VitS14,
        "dinov2_vitb14" => VitS14 with { EmbedDim = 768, NumHeads = 12 },
        "dinov2_vitl14" => VitS14 with { EmbedDim = 1024, Depth = 24, NumHeads = 16 },
        _ => throw new ArgumentException($"DINOv2 backbone '{name}' is not supported (dinov2_vits14, dinov2_vitb14, dinov2_vitl14)"),
    };

    /// <summary>Checks the sizes fit together; throws <see cref="ArgumentException"/> naming the field.</summary>
    public void Validate()
    {
        if (PatchSize < 1 || ImageSize < PatchSize) throw new ArgumentException($"DINO img_size {ImageSize} must hold at least one patch of {PatchSize}");
        if (EmbedDim < 1 || NumHeads < 1 || EmbedDim % NumHeads != 0) throw new ArgumentException($"DINO embed_dim {EmbedDim} is not divisible by num_heads {NumHeads}");
        if (Depth < 1 || MlpHidden < 1) throw new ArgumentException("DINO depth and mlp_ratio must be positive");
        if (InterpolateOffset < 0) throw new ArgumentException("DINO interpolate_offset must not be negative");
    }

    /// <summary>The parameters <c>DinoVisionTransformer</c> registers, in state-dict order, without building it.</summary>
    public IEnumerable<ParameterShape> ExpectedParameters(string prefix = "")
    {
        long d = EmbedDim, hidden = MlpHidden;
        yield return new($"{prefix}cls_token", [1, 1, d]);
        yield return new($"{prefix}pos_embed", [1, (long)PositionGrid * PositionGrid + 1, d]);
        yield return new($"{prefix}mask_token", [1, d]);
        yield return new($"{prefix}patch_embed.proj.weight", [d, 3, PatchSize, PatchSize]);
        yield return new($"{prefix}patch_embed.proj.bias", [d]);
        var layerScale = InitValues is { } v && v != 0;
        for (var i = 0; i < Depth; i++)
        {
            var b = $"{prefix}blocks.{i}.";
            foreach (var p in ParameterShape.LayerNorm(b + "norm1", d)) yield return p;
            foreach (var p in ParameterShape.Linear(b + "attn.qkv", d, 3 * d)) yield return p;
            foreach (var p in ParameterShape.Linear(b + "attn.proj", d, d)) yield return p;
            if (layerScale) yield return new(b + "ls1.gamma", [d]);
            foreach (var p in ParameterShape.LayerNorm(b + "norm2", d)) yield return p;
            foreach (var p in ParameterShape.Linear(b + "mlp.fc1", d, hidden)) yield return p;
            foreach (var p in ParameterShape.Linear(b + "mlp.fc2", hidden, d)) yield return p;
            if (layerScale) yield return new(b + "ls2.gamma", [d]);
        }
        foreach (var p in ParameterShape.LayerNorm($"{prefix}norm", d)) yield return p;
    }
}

/// <summary>
/// The layer-wise Q-Former (<c>get_layerwise_qformer</c>, upstream section <c>framework.layer_qformer</c>): learnable
/// queries that cross-attend, one block per chosen VLM layer, to that layer's hidden states (concatenated with the
/// projected DINO tokens).
/// </summary>
public sealed record QFormerConfig
{
    /// <summary><c>qformer_start_layer</c>: first VLM hidden state used (index into embeddings + every layer's output).</summary>
    public int StartLayer { get; init; } = 36;
    /// <summary><c>qformer_end_layer</c>: one past the last hidden state used; one block per state in between.</summary>
    public int EndLayer { get; init; } = 37;
    /// <summary><c>num_query_tokens</c>.</summary>
    public int NumQueryTokens { get; init; } = 64;
    /// <summary><c>input_dim</c>: width of the VLM hidden states.</summary>
    public int InputDim { get; init; } = 2048;
    /// <summary><c>ouptput_dim</c> (sic, upstream's spelling): width of the queries and of the output.</summary>
    public int OutputDim { get; init; } = 768;
    /// <summary>Attention heads per block (<c>get_layerwise_qformer</c>'s default, not in the upstream config).</summary>
    public int NumHeads { get; init; } = 8;
    /// <summary>MLP hidden width over <see cref="OutputDim"/>.</summary>
    public double MlpRatio { get; init; } = 4;
    /// <summary>Dropout on the attention weights and on the MLP output, in training mode only.</summary>
    public double Dropout { get; init; } = 0.1;
    /// <summary><c>grad_scale</c>: the factor on the action loss's gradient into the VLM when <see cref="GradientDecay"/> is on (paper: 0.5).</summary>
    public double GradScale { get; init; } = 0.5;
    /// <summary>
    /// Whether the gradient into the VLM's hidden states is multiplied by <see cref="GradScale"/> (the paper's gradient
    /// decay). Off by default: upstream's hook (<c>LayerwiseQFormer.scale_hook</c>) is commented out, so the released
    /// models trained without it.
    /// </summary>
    public bool GradientDecay { get; init; }

    /// <summary>Blocks, one per VLM hidden state used.</summary>
    public int Layers => EndLayer - StartLayer;

    /// <summary>MLP hidden width.</summary>
    public int MlpHidden => (int)(OutputDim * MlpRatio);

    /// <summary>Reads upstream's <c>framework.layer_qformer</c> section (heads, MLP ratio and dropout keep the factory's defaults).</summary>
    public static QFormerConfig FromUpstream(JsonNode layerQformer) => new()
    {
        StartLayer = UpstreamJson.Int(layerQformer, "qformer_start_layer"),
        EndLayer = UpstreamJson.Int(layerQformer, "qformer_end_layer"),
        NumQueryTokens = UpstreamJson.Int(layerQformer, "num_query_tokens"),
        InputDim = UpstreamJson.Int(layerQformer, "input_dim"),
        OutputDim = UpstreamJson.Int(layerQformer, "ouptput_dim"),
        GradScale = UpstreamJson.Double(layerQformer, "grad_scale", 1.0),
    };

    /// <summary>Checks the sizes fit together; throws <see cref="ArgumentException"/> naming the field.</summary>
    public void Validate()
    {
        if (StartLayer < 0 || EndLayer <= StartLayer) throw new ArgumentException($"qformer_end_layer {EndLayer} must be above qformer_start_layer {StartLayer} ≥ 0");
        if (NumQueryTokens < 1 || InputDim < 1 || MlpHidden < 1) throw new ArgumentException("num_query_tokens, input_dim and mlp_ratio must be positive");
        if (OutputDim < 1 || NumHeads < 1 || OutputDim % NumHeads != 0) throw new ArgumentException($"Q-Former ouptput_dim {OutputDim} is not divisible by {NumHeads} heads");
        if (Dropout is < 0 or >= 1) throw new ArgumentException($"Q-Former dropout {Dropout} must be in [0, 1)");
        if (!double.IsFinite(GradScale)) throw new ArgumentException("grad_scale must be finite");
    }

    /// <summary>The parameters <c>LayerwiseQFormer</c> registers, in state-dict order, without building it.</summary>
    public IEnumerable<ParameterShape> ExpectedParameters(string prefix = "")
    {
        long d = OutputDim, hidden = MlpHidden;
        yield return new($"{prefix}query_tokens", [NumQueryTokens, d]);
        foreach (var p in ParameterShape.Linear($"{prefix}proj", InputDim, d)) yield return p;
        for (var i = 0; i < Layers; i++)
        {
            var b = $"{prefix}layers.{i}.";
            foreach (var p in ParameterShape.LayerNorm(b + "norm1", d)) yield return p;
            yield return new(b + "cross_attn.in_proj_weight", [3 * d, d]);
            yield return new(b + "cross_attn.in_proj_bias", [3 * d]);
            foreach (var p in ParameterShape.Linear(b + "cross_attn.out_proj", d, d)) yield return p;
            foreach (var p in ParameterShape.LayerNorm(b + "norm2", d)) yield return p;
            foreach (var p in ParameterShape.Linear(b + "mlp.0", d, hidden)) yield return p;
            foreach (var p in ParameterShape.Linear(b + "mlp.2", hidden, d)) yield return p;
        }
    }
}

/// <summary>
/// The DiT action model (<c>ActionModel</c> around a <c>DiT</c>, upstream section <c>framework.action_model</c>):
/// sizes of the transformer, of the action chunk and of the diffusion, with the sampling settings upstream's policy
/// server passes to <c>InternVLA_M1.predict_action</c> (<c>deployment/model_server/tools/model_interface.py</c>: DDIM,
/// 10 steps, guidance 1.5).
/// </summary>
public sealed record ActionModelConfig
{
    /// <summary><c>action_model_type</c> (informational once the sizes are set).</summary>
    public string ModelType { get; init; } = "DiT-B";
    /// <summary>DiT blocks.</summary>
    public int Depth { get; init; } = 12;
    /// <summary><c>token_size</c>: the DiT's width, which is also the width of the condition tokens.</summary>
    public int TokenSize { get; init; } = 768;
    /// <summary>Attention heads.</summary>
    public int NumHeads { get; init; } = 12;
    /// <summary>MLP hidden width over <see cref="TokenSize"/>.</summary>
    public double MlpRatio { get; init; } = 4;
    /// <summary><c>n_conditon_token</c> (sic): condition tokens, the Q-Former's query count.</summary>
    public int ConditionTokens { get; init; } = 64;
    /// <summary><c>action_dim</c> (the DiT's <c>in_channels</c>).</summary>
    public int ActionDim { get; init; } = 7;
    /// <summary><c>future_action_window_size</c>: the chunk is this plus one steps.</summary>
    public int FutureActionWindowSize { get; init; } = 15;
    /// <summary><c>class_dropout_prob</c>: probability of replacing a sample's whole condition by <c>uncondition</c> in training (0 builds no <c>uncondition</c>, so no guidance).</summary>
    public double ClassDropoutProb { get; init; } = 0.1;
    /// <summary><c>diffusion_steps</c> of the DDPM.</summary>
    public int DiffusionSteps { get; init; } = 100;
    /// <summary><c>noise_schedule</c>; <c>squaredcos_cap_v2</c> (the cosine schedule) is the one built.</summary>
    public string NoiseSchedule { get; init; } = GaussianDiffusion.CosineSchedule;
    /// <summary><c>trainer.repeated_diffusion_steps</c>: each sample is repeated this many times with fresh noise and timesteps.</summary>
    public int RepeatedDiffusionSteps { get; init; } = 4;
    /// <summary>DDIM steps at inference.</summary>
    public int DdimSteps { get; init; } = 10;
    /// <summary>Classifier-free guidance scale at inference (guidance is used above 1, as upstream).</summary>
    public double CfgScale { get; init; } = 1.5;
    /// <summary>
    /// VlaCloud's point guidance, not upstream's: one more condition token after the <see cref="ConditionTokens"/> queries,
    /// the projected <see cref="PointGuide"/> (<see cref="PolicyConfig.PointGuidance"/>). It adds <c>net.point_position</c>
    /// and, with condition dropout, <c>net.z_embedder.point_uncondition</c>, names no released checkpoint has; the released
    /// tensors keep their shapes, so a released DiT loads into a point-guided one with only those new.
    /// </summary>
    public bool PointToken { get; init; }

    /// <summary>Tokens of the condition the DiT reads: the queries, and the point token with <see cref="PointToken"/>.</summary>
    public int ConditionSequence => ConditionTokens + (PointToken ? 1 : 0);

    /// <summary>Actions per chunk: <see cref="FutureActionWindowSize"/> + 1 (no past window: upstream asserts it is 0).</summary>
    public int ChunkLength => FutureActionWindowSize + 1;

    /// <summary>MLP hidden width.</summary>
    public int MlpHidden => (int)(TokenSize * MlpRatio);

    /// <summary>The DiT sizes upstream names <c>DiT-S</c>, <c>DiT-B</c> and <c>DiT-L</c> (other fields keep their defaults).</summary>
    public static ActionModelConfig Preset(string modelType) => modelType switch
    {
        "DiT-S" => new() { ModelType = modelType, Depth = 6, TokenSize = 384, NumHeads = 4 },
        "DiT-B" => new() { ModelType = modelType, Depth = 12, TokenSize = 768, NumHeads = 12 },
        "DiT-L" => new() { ModelType = modelType, Depth = 24, TokenSize = 1024, NumHeads = 16 },
        _ => throw new ArgumentException($"action_model_type '{modelType}' is not one of DiT-S, DiT-B, DiT-L"),
    };

    /// <summary>Checks the sizes fit together; throws <see cref="ArgumentException"/> naming the field.</summary>
    public void Validate()
    {
        if (Depth < 1 || TokenSize < 1 || NumHeads < 1 || TokenSize % NumHeads != 0) throw new ArgumentException($"DiT token_size {TokenSize} is not divisible by {NumHeads} heads");
        if (MlpHidden < 1 || ConditionTokens < 1 || ActionDim < 1 || FutureActionWindowSize < 0)
            throw new ArgumentException("mlp_ratio, n_conditon_token and action_dim must be positive, future_action_window_size ≥ 0");
        if (ClassDropoutProb is < 0 or > 1) throw new ArgumentException($"class_dropout_prob {ClassDropoutProb} must be in [0, 1]");
        if (NoiseSchedule != GaussianDiffusion.CosineSchedule) throw new ArgumentException($"noise_schedule '{NoiseSchedule}' is not built (only {GaussianDiffusion.CosineSchedule})");
        if (DiffusionSteps < 2 || RepeatedDiffusionSteps < 1) throw new ArgumentException("diffusion_steps must be ≥ 2 and repeated_diffusion_steps ≥ 1");
        if (DdimSteps < 1 || DdimSteps > DiffusionSteps) throw new ArgumentException($"DDIM steps {DdimSteps} must be in [1, {DiffusionSteps}]");
    }

    /// <summary>The parameters <c>ActionModel</c> registers, in state-dict order, without building it.</summary>
    public IEnumerable<ParameterShape> ExpectedParameters(string prefix = "")
    {
        long d = TokenSize, hidden = MlpHidden;
        var net = $"{prefix}net.";
        yield return new(net + "positional_embedding", [ConditionTokens + (long)ChunkLength, d]);
        if (PointToken) yield return new(net + "point_position", [1, d]);
        foreach (var p in ParameterShape.Linear(net + "history_embedder.linear", ActionDim, d)) yield return p;
        foreach (var p in ParameterShape.Linear(net + "x_embedder.linear", ActionDim, d)) yield return p;
        foreach (var p in ParameterShape.Linear(net + "t_embedder.mlp.0", TimestepEmbedder.FrequencyEmbeddingSize, d)) yield return p;
        foreach (var p in ParameterShape.Linear(net + "t_embedder.mlp.2", d, d)) yield return p;
        if (ClassDropoutProb > 0) yield return new(net + "z_embedder.uncondition", [ConditionTokens, d]);
        if (ClassDropoutProb > 0 && PointToken) yield return new(net + "z_embedder.point_uncondition", [1, d]);
        foreach (var p in ParameterShape.Linear(net + "z_embedder.linear", d, d)) yield return p;
        for (var i = 0; i < Depth; i++)
        {
            var b = $"{net}blocks.{i}.";
            foreach (var p in ParameterShape.Linear(b + "attn.qkv", d, 3 * d)) yield return p;
            foreach (var p in ParameterShape.Linear(b + "attn.proj", d, d)) yield return p;
            foreach (var p in ParameterShape.Linear(b + "mlp.fc1", d, hidden)) yield return p;
            foreach (var p in ParameterShape.Linear(b + "mlp.fc2", hidden, d)) yield return p;
        }
        foreach (var p in ParameterShape.Linear(net + "final_layer.linear", d, ActionDim)) yield return p;
    }
}

/// <summary>
/// Every size of InternVLA-M1's heads, the parts besides Qwen2.5-VL: the DINOv2 stream and its projection
/// <c>dino_pro</c> to the VLM width, the layer-wise Q-Former and the DiT action model.
/// </summary>
/// <param name="Dino">The DINOv2 body.</param>
/// <param name="QFormer">The bridge.</param>
/// <param name="ActionModel">System 1.</param>
/// <param name="VlmHiddenSize">Width of the VLM's hidden states, which <c>dino_pro</c> projects the DINO tokens to.</param>
public sealed record InternVlaHeadsConfig(DinoConfig Dino, QFormerConfig QFormer, ActionModelConfig ActionModel, int VlmHiddenSize)
{
    /// <summary>
    /// The released model's heads (<c>InternVLA/config/training/internvla_cotrain_oxe.yaml</c>): ViT-S/14, a one-block
    /// Q-Former over the last of Qwen2.5-VL-3B's 36 layers (64 queries × 768), DiT-B over 16-step chunks of 7 dims.
    /// </summary>
    public static InternVlaHeadsConfig Released { get; } = new(
        DinoConfig.VitS14,
        new QFormerConfig(),
        ActionModelConfig.Preset("DiT-B"),
        VlmHiddenSize: 2048);

    /// <summary>
    /// Reads an upstream training config (the YAML of <c>InternVLA/config/training</c> as JSON): <c>framework.dino</c>,
    /// <c>framework.layer_qformer</c>, <c>framework.action_model</c>, <c>framework.qwenvl.vl_hidden_dim</c> and
    /// <c>trainer.repeated_diffusion_steps</c>. The DiT's condition tokens are the Q-Former's queries; what the config
    /// does not set keeps upstream's constructor defaults.
    /// </summary>
    public static InternVlaHeadsConfig FromUpstream(JsonNode config)
    {
        var result = ReadUpstream(config);
        result.Validate();
        return result;
    }

    /// <summary><see cref="FromUpstream"/> without the final check, for callers that override sizes before checking.</summary>
    internal static InternVlaHeadsConfig ReadUpstream(JsonNode config)
    {
        var framework = config["framework"] ?? throw new ArgumentException("the config has no 'framework' section");
        var qformer = QFormerConfig.FromUpstream(framework["layer_qformer"] ?? throw new ArgumentException("the config has no 'framework.layer_qformer' section"));
        var action = framework["action_model"] ?? throw new ArgumentException("the config has no 'framework.action_model' section");
        var dinoName = framework["dino"]?["dino_backbone"]?.GetValue<string>() ?? "dinov2_vits14";
        var actionModel = ActionModelConfig.Preset(UpstreamJson.String(action, "action_model_type")) with
        {
            ActionDim = UpstreamJson.Int(action, "action_dim"),
            FutureActionWindowSize = UpstreamJson.Int(action, "future_action_window_size"),
            ConditionTokens = qformer.NumQueryTokens,
            RepeatedDiffusionSteps = config["trainer"] is { } trainer ? UpstreamJson.Int(trainer, "repeated_diffusion_steps", 4) : 4,
        };
        if (UpstreamJson.Int(action, "past_action_window_size", 0) != 0)
            throw new ArgumentException("past_action_window_size must be 0 (upstream's DiT asserts it: action history is not used)");
        var vlm = framework["qwenvl"] is { } qwen ? UpstreamJson.Int(qwen, "vl_hidden_dim", qformer.InputDim) : qformer.InputDim;
        return new InternVlaHeadsConfig(DinoConfig.Backbone(dinoName), qformer, actionModel, vlm);
    }

    /// <summary>Checks every part and that they fit together; throws <see cref="ArgumentException"/> naming the field.</summary>
    public void Validate()
    {
        Dino.Validate();
        QFormer.Validate();
        ActionModel.Validate();
        if (VlmHiddenSize < 1) throw new ArgumentException("the VLM hidden size must be positive");
        if (QFormer.InputDim != VlmHiddenSize)
            throw new ArgumentException($"the Q-Former's input_dim {QFormer.InputDim} must be the VLM width {VlmHiddenSize}: it reads VLM states and dino_pro's output");
        if (QFormer.OutputDim != ActionModel.TokenSize)
            throw new ArgumentException($"the Q-Former's ouptput_dim {QFormer.OutputDim} must be the DiT's token_size {ActionModel.TokenSize}");
        if (QFormer.NumQueryTokens != ActionModel.ConditionTokens)
            throw new ArgumentException($"the Q-Former's {QFormer.NumQueryTokens} queries must be the DiT's {ActionModel.ConditionTokens} condition tokens");
    }

    /// <summary>
    /// The parameters of the heads in <c>InternVLA_M1</c>'s state-dict order and names (<c>layer_qformer.*</c>,
    /// <c>action_model.net.*</c>, <c>dino_encoder.body.*</c>, <c>dino_pro.*</c>), without allocating them.
    /// </summary>
    public IEnumerable<ParameterShape> ExpectedParameters() =>
        QFormer.ExpectedParameters("layer_qformer.")
            .Concat(ActionModel.ExpectedParameters("action_model."))
            .Concat(Dino.ExpectedParameters("dino_encoder.body."))
            .Concat(ParameterShape.Linear("dino_pro", Dino.EmbedDim, VlmHiddenSize));
}

/// <summary>Reads values of upstream's configs (OmegaConf YAML written as JSON), naming the missing or mistyped key.</summary>
internal static class UpstreamJson
{
    // A JSON number may be held as int, long or double depending on who built the node (parsed text, YAML, code),
    // so numbers are read by value, not by the CLR type behind them.
    public static int Int(JsonNode section, string key, int? fallback = null) =>
        section[key] is null && fallback is { } f ? f : Read(section, key, n =>
            n is JsonValue v && v.TryGetValue<int>(out var i) ? i
            : n is JsonValue l && l.TryGetValue<long>(out var big) && big is >= int.MinValue and <= int.MaxValue ? (int)big
            : n is JsonValue d && d.TryGetValue<double>(out var x) && x == Math.Floor(x) && x is >= int.MinValue and <= int.MaxValue ? (int)x
            : n.GetValue<int>());

    public static double Double(JsonNode section, string key, double? fallback = null) =>
        section[key] is null && fallback is { } f ? f : Read(section, key, n =>
            n is JsonValue v && v.TryGetValue<double>(out var d) ? d
            : n is JsonValue i && i.TryGetValue<int>(out var x) ? x
            : n is JsonValue l && l.TryGetValue<long>(out var y) ? y
            : n.GetValue<double>());

    public static string String(JsonNode section, string key) => Read(section, key, n => n.GetValue<string>());

    public static bool Bool(JsonNode section, string key) => Read(section, key, n => n.GetValue<bool>());

    private static T Read<T>(JsonNode section, string key, Func<JsonNode, T> read)
    {
        var node = section[key] ?? throw new ArgumentException($"the config has no '{key}'");
        try { return read(node); }
        catch (Exception e) when (e is FormatException or InvalidOperationException)
        { throw new ArgumentException($"the config's '{key}' is {node.ToJsonString()}, not a {typeof(T).Name}"); }
    }
}
