using System.Text.Json.Nodes;
using VlaCloud.Policy.InternVla.Heads;
using VlaCloud.Policy.InternVla.Imaging;
using VlaCloud.Policy.InternVla.Qwen;

namespace VlaCloud.Policy.InternVla;

/// <summary>
/// Every size and switch of <see cref="InternVlaM1"/>: Qwen2.5-VL's upstream <c>config.json</c>, the heads from
/// upstream's <c>framework</c> section, the image processor, and the recipe's prompt, image size and losses.
/// </summary>
public sealed record InternVlaM1Config
{
    /// <summary>
    /// The released <c>CoT_prompt</c> (<c>InternVLA/config/training/internvla_cotrain_*.yaml</c>, <c>datasets.vla_data</c>):
    /// the instruction goes in place of <c>{instruction}</c>. The answer is never decoded in action training; only the
    /// VLM's hidden states are read.
    /// </summary>
    public const string ReleasedCotPrompt =
        "Your task is {instruction}. To identify the key objects for your task. Locate their bounding boxes in [x1,y1,x2,y2] format.";

    /// <summary>System 2's sizes (upstream <c>config.json</c>).</summary>
    public required Qwen25VlConfig Qwen { get; init; }

    /// <summary>The DINO stream, Q-Former and DiT.</summary>
    public required InternVlaHeadsConfig Heads { get; init; }

    /// <summary>Qwen's image processor settings (<c>preprocessor_config.json</c>).</summary>
    public QwenImageProcessorConfig Processor { get; init; } = new();

    /// <summary>The prompt an instruction is put into; <see cref="Vanilla"/> uses the bare instruction.</summary>
    public string CotPrompt { get; init; } = ReleasedCotPrompt;

    /// <summary>
    /// <c>datasets.vla_data.image_size</c>: every camera image is resized to this square before both streams (224 in the
    /// release, as <c>predict_action</c>'s <c>resize_images</c>); 0 keeps the camera's size.
    /// </summary>
    public int ImageSize { get; init; } = 224;

    /// <summary>The short side DINO's transform resizes to (<c>Resize(224)</c>).</summary>
    public int DinoShortSide { get; init; } = 224;

    /// <summary>
    /// Whether the proprioceptive state is an input (off in the release). When on, the normalised state and its mask go
    /// through <c>state_projector</c> and are added to every condition token.
    /// </summary>
    public bool UseState { get; init; }

    /// <summary>Largest state dimension with <see cref="UseState"/>.</summary>
    public int StateDim { get; init; } = 8;

    /// <summary>Weight of the VLM (spatial answer) cross-entropy in co-training (0.1 in the release).</summary>
    public double VlmLossWeight { get; init; } = 0.1;

    /// <summary>Vanilla VLA: no VLM loss and no spatial prompt.</summary>
    public bool Vanilla { get; init; }

    /// <summary>
    /// VlaCloud's point guidance (<see cref="PolicyConfig.PointGuidance"/>): a <c>point_projector</c> at the root and the
    /// DiT's point token (<see cref="ActionModelConfig.PointToken"/>, where it is set).
    /// </summary>
    public bool PointGuidance => Heads.ActionModel.PointToken;

    /// <summary>Action chunk length (future window + 1).</summary>
    public int ChunkLength => Heads.ActionModel.ChunkLength;

    /// <summary>Action dimension of the DiT; smaller embodiments are padded with zeros.</summary>
    public int ActionDim => Heads.ActionModel.ActionDim;

    /// <summary>Checks every part fits together; throws <see cref="ArgumentException"/> naming the field.</summary>
    public void Validate()
    {
        Qwen.Validate();
        Heads.Validate();
        if (Heads.VlmHiddenSize != Qwen.Text.HiddenSize)
            throw new ArgumentException($"framework: the heads read a VLM {Heads.VlmHiddenSize} wide but Qwen's hidden_size is {Qwen.Text.HiddenSize}");
        if (Heads.QFormer.EndLayer > Qwen.Text.NumHiddenLayers + 1)
            throw new ArgumentException($"framework.layer_qformer.qformer_end_layer {Heads.QFormer.EndLayer} is past Qwen's {Qwen.Text.NumHiddenLayers + 1} hidden states");
        if (ImageSize is < 0 or > 4096) throw new ArgumentException($"image_size must be between 0 and 4096, not {ImageSize}");
        if (DinoShortSide is < 14 or > 4096) throw new ArgumentException($"dino_short_side must be between 14 and 4096, not {DinoShortSide}");
        if (StateDim is < 1 or > 1024) throw new ArgumentException($"state_dim must be between 1 and 1024, not {StateDim}");
        if (!double.IsFinite(VlmLossWeight) || VlmLossWeight < 0) throw new ArgumentException("vlm_loss_weight must be a finite number ≥ 0");
        if (PointGuidance && Vanilla) throw new ArgumentException("point guidance reads System 2's spatial answers, which a vanilla policy is not trained to give");
        if (!CotPrompt.Contains("{instruction}", StringComparison.Ordinal)) throw new ArgumentException("cot_prompt must contain {instruction}");
    }

    /// <summary>
    /// Reads the heads from upstream's <c>framework</c> section (the YAML as JSON: <c>dino</c>, <c>layer_qformer</c>,
    /// <c>action_model</c>, <c>qwenvl</c>) with VlaCloud's optional size keys for small configs of the same family:
    /// <c>dino</c>: <c>img_size</c>, <c>patch_size</c>, <c>embed_dim</c>, <c>depth</c>, <c>num_heads</c>, <c>mlp_ratio</c>;
    /// <c>layer_qformer</c>: <c>num_heads</c>, <c>mlp_ratio</c>, <c>dropout</c>, <c>gradient_decay</c>;
    /// <c>action_model</c>: <c>depth</c>, <c>token_size</c>, <c>num_heads</c>, <c>mlp_ratio</c>, <c>class_dropout_prob</c>,
    /// <c>diffusion_steps</c>, <c>repeated_diffusion_steps</c>, <c>ddim_steps</c>, <c>cfg_scale</c>. Without them the
    /// upstream presets (<c>dino_backbone</c>, <c>action_model_type</c>) apply, so the released YAML reads unchanged.
    /// </summary>
    public static InternVlaHeadsConfig HeadsFromFramework(JsonObject framework, int vlmHiddenSize)
    {
        var root = new JsonObject { ["framework"] = framework.DeepClone(), };
        if (framework["qwenvl"] is null) root["framework"]!["qwenvl"] = new JsonObject { ["vl_hidden_dim"] = vlmHiddenSize };
        if (framework["action_model"]?["repeated_diffusion_steps"] is { } repeats) root["trainer"] = new JsonObject { ["repeated_diffusion_steps"] = repeats.DeepClone() };
        var preset = InternVlaHeadsConfig.ReadUpstream(root);

        var dino = preset.Dino;
        if (framework["dino"] is JsonObject d)
            dino = dino with
            {
                ImageSize = UpstreamJson.Int(d, "img_size", dino.ImageSize),
                PatchSize = UpstreamJson.Int(d, "patch_size", dino.PatchSize),
                EmbedDim = UpstreamJson.Int(d, "embed_dim", dino.EmbedDim),
                Depth = UpstreamJson.Int(d, "depth", dino.Depth),
                NumHeads = UpstreamJson.Int(d, "num_heads", dino.NumHeads),
                MlpRatio = UpstreamJson.Double(d, "mlp_ratio", dino.MlpRatio),
            };
        var q = (JsonObject)framework["layer_qformer"]!;
        var qformer = preset.QFormer with
        {
            NumHeads = UpstreamJson.Int(q, "num_heads", preset.QFormer.NumHeads),
            MlpRatio = UpstreamJson.Double(q, "mlp_ratio", preset.QFormer.MlpRatio),
            Dropout = UpstreamJson.Double(q, "dropout", preset.QFormer.Dropout),
            GradientDecay = q["gradient_decay"] is { } g ? UpstreamJson.Bool(q, "gradient_decay") : preset.QFormer.GradientDecay,
        };
        var a = (JsonObject)framework["action_model"]!;
        var am = preset.ActionModel;
        var action = am with
        {
            Depth = UpstreamJson.Int(a, "depth", am.Depth),
            TokenSize = UpstreamJson.Int(a, "token_size", am.TokenSize),
            NumHeads = UpstreamJson.Int(a, "num_heads", am.NumHeads),
            MlpRatio = UpstreamJson.Double(a, "mlp_ratio", am.MlpRatio),
            ClassDropoutProb = UpstreamJson.Double(a, "class_dropout_prob", am.ClassDropoutProb),
            DiffusionSteps = UpstreamJson.Int(a, "diffusion_steps", am.DiffusionSteps),
            DdimSteps = UpstreamJson.Int(a, "ddim_steps", am.DdimSteps),
            CfgScale = UpstreamJson.Double(a, "cfg_scale", am.CfgScale),
        };
        var result = new InternVlaHeadsConfig(dino, qformer, action, preset.VlmHiddenSize);
        result.Validate();
        return result;
    }
}
