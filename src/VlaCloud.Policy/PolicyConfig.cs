using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using VlaCloud.Policy.InternVla;
using VlaCloud.Policy.InternVla.Heads;
using VlaCloud.Policy.InternVla.Qwen;

namespace VlaCloud.Policy;

/// <summary>The model families a <see cref="PolicyConfig"/> can describe (its <c>family</c> field, parsed).</summary>
public enum PolicyFamily
{
    /// <summary><see cref="PolicyConfig.St4VlaFamily"/>: VlaCloud's own outline ST4VLA model.</summary>
    St4Vla,
    /// <summary><see cref="PolicyConfig.InternVlaM1Family"/>: the released InternVLA-M1.</summary>
    InternVlaM1,
}

/// <summary>The ViT stems of the ST4VLA family (<see cref="PolicyConfig.VisionStem"/>, parsed).</summary>
public enum VisionStemKind
{
    /// <summary><c>patch</c>: a linear projection of each patch.</summary>
    Patch,
    /// <summary><c>conv</c>: two 3×3 stride-2 convolutions before the patch projection.</summary>
    Conv,
}

/// <summary>
/// Every size and switch of the ST4VLA model; saved as <c>config.json</c> inside each checkpoint.
/// Use <see cref="Tiny"/>, <see cref="Small"/> or <see cref="Base"/> and change fields with <c>with</c>.
/// </summary>
public sealed record PolicyConfig
{
    /// <summary>The outline ST4VLA family (VlaCloud's own model, every size a field of this record): the default.</summary>
    public const string St4VlaFamily = "st4vla";

    /// <summary>The released InternVLA-M1 family: sizes from <see cref="Qwen"/> and <see cref="Framework"/>.</summary>
    public const string InternVlaM1Family = "internvla-m1";

    /// <summary>Name of the preset this config came from (informational).</summary>
    public string Name { get; init; } = "tiny";

    /// <summary>
    /// The model family: <see cref="St4VlaFamily"/> (the default, and what a config without the field means) or
    /// <see cref="InternVlaM1Family"/>.
    /// </summary>
    public string Family { get; init; } = St4VlaFamily;

    /// <summary>
    /// <see cref="Family"/> parsed: code branches on this, so a family name is compared in one place.
    /// </summary>
    /// <exception cref="ArgumentException">The family is none of the known names (the message lists them).</exception>
    [JsonIgnore]
    public PolicyFamily ModelFamily => Family switch
    {
        St4VlaFamily => PolicyFamily.St4Vla,
        InternVlaM1Family => PolicyFamily.InternVlaM1,
        _ => throw new ArgumentException($"family must be {St4VlaFamily} or {InternVlaM1Family}, not '{Family}'"),
    };

    /// <summary>
    /// InternVLA-M1 only: Qwen2.5-VL's upstream <c>config.json</c> object (<c>text_config</c>, <c>vision_config</c>,
    /// token ids), read by <see cref="Qwen25VlConfig.FromJson"/>.
    /// </summary>
    public JsonObject? Qwen { get; init; }

    /// <summary>
    /// InternVLA-M1 only: upstream's <c>framework</c> section (<c>dino</c>, <c>layer_qformer</c>, <c>action_model</c>), with
    /// VlaCloud's optional size keys for small configs (see <see cref="InternVlaM1Config.HeadsFromFramework"/>).
    /// </summary>
    public JsonObject? Framework { get; init; }

    /// <summary>InternVLA-M1 only: the prompt an instruction goes into (<c>{instruction}</c>); null is the released <c>CoT_prompt</c>.</summary>
    public string? CotPrompt { get; init; }

    // System 2: vision
    /// <summary>Square side in pixels that every camera image is resized to.</summary>
    public int ImageSize { get; init; } = 64;
    /// <summary>ViT patch side in pixels; (ImageSize / PatchSize)² tokens per camera.</summary>
    public int PatchSize { get; init; } = 8;
    /// <summary>Maximum number of cameras per observation.</summary>
    public int MaxCameras { get; init; } = 2;
    /// <summary>
    /// How pixels become patch tokens: <c>patch</c>, one linear projection per patch (ViT, Qwen2.5-VL), or
    /// <c>conv</c>, two 3×3 stride-2 convolutions before the patch projection (Xiao et al. 2021, "Early
    /// convolutions help transformers see better"). A convolution detects a shape wherever it sits inside a
    /// patch, which a linear patch projection must learn separately for every offset. Measured on the tiny
    /// config with 16-px patches: it learns to point at a lone square to within 2 px in 1,500 steps, while the
    /// linear projection is still guessing after 600 (a Policy test keeps the first half of that).
    /// <c>conv</c> needs <see cref="PatchSize"/> divisible by 4.
    /// </summary>
    public string VisionStem { get; init; } = "patch";

    /// <summary><see cref="VisionStem"/> parsed.</summary>
    /// <exception cref="ArgumentException">Neither <c>patch</c> nor <c>conv</c>.</exception>
    [JsonIgnore]
    public VisionStemKind VisionStemKind => VisionStem switch
    {
        "patch" => VisionStemKind.Patch,
        "conv" => VisionStemKind.Conv,
        _ => throw new ArgumentException($"vision_stem must be patch or conv, not '{VisionStem}'"),
    };
    /// <summary>ViT width.</summary>
    public int VisionWidth { get; init; } = 64;
    /// <summary>ViT depth.</summary>
    public int VisionLayers { get; init; } = 2;
    /// <summary>ViT heads.</summary>
    public int VisionHeads { get; init; } = 4;

    // System 2: language model
    /// <summary>Decoder width.</summary>
    public int LmWidth { get; init; } = 96;
    /// <summary>Decoder depth.</summary>
    public int LmLayers { get; init; } = 2;
    /// <summary>Decoder heads.</summary>
    public int LmHeads { get; init; } = 4;
    /// <summary>SwiGLU hidden width.</summary>
    public int LmMlpWidth { get; init; } = 256;
    /// <summary>Rotary base.</summary>
    public double RopeTheta { get; init; } = 10000;
    /// <summary>Text vocabulary size (including special tokens), without coordinate tokens.</summary>
    public int TextVocabSize { get; init; } = PolicyTokenizer.BuiltInWordCount;
    /// <summary>Number of quantised coordinate tokens <c>&lt;loc_0&gt;…</c> per axis.</summary>
    public int LocationBins { get; init; } = 64;
    /// <summary><c>words</c> (built-in vocabulary) or <c>hf</c> (a Hugging Face tokenizer.json).</summary>
    public string Tokenizer { get; init; } = "words";
    /// <summary>Instruction (plus spatial prompt) tokens beyond this are cut.</summary>
    public int MaxTextTokens { get; init; } = 64;
    /// <summary>Maximum points of a generated trajectory.</summary>
    public int MaxTrajectoryPoints { get; init; } = 8;

    // Bridge
    /// <summary>Learnable latent queries appended to the VLM input.</summary>
    public int LatentQueries { get; init; } = 8;
    /// <summary>Querying transformer width.</summary>
    public int BridgeWidth { get; init; } = 64;
    /// <summary>Querying transformer depth.</summary>
    public int BridgeLayers { get; init; } = 1;
    /// <summary>Querying transformer heads.</summary>
    public int BridgeHeads { get; init; } = 4;

    // System 1
    /// <summary>DiT width.</summary>
    public int ExpertWidth { get; init; } = 64;
    /// <summary>DiT depth.</summary>
    public int ExpertLayers { get; init; } = 2;
    /// <summary>DiT heads.</summary>
    public int ExpertHeads { get; init; } = 4;
    /// <summary>Action chunk length H.</summary>
    public int ChunkLength { get; init; } = 8;
    /// <summary>Largest action dimension of any embodiment; smaller ones are padded and masked.</summary>
    public int MaxActionDim { get; init; } = 8;
    /// <summary>Largest state dimension of any embodiment; smaller ones are padded and masked.</summary>
    public int MaxStateDim { get; init; } = 8;
    /// <summary>Whether the proprioceptive state is an input (the released models use none).</summary>
    public bool UseState { get; init; } = true;
    /// <summary>
    /// Whether System 1 also reads where the task's object is and where it goes, as one token of
    /// <c>[target x, y, destination x, y, masks]</c> (a <see cref="PointGuide"/>): teacher-forced from the spatial labels in
    /// training, System 2's own answers to the point and placement questions in inference. Not in the paper, whose System 1
    /// reads the VLM only through the latent queries: on the tiny config the queries did not carry the object's position
    /// (README, experiment, sixth and seventh rounds), while System 2 could answer it. Needs spatial training (not vanilla).
    /// The st4vla family reads it in its action expert; the InternVLA-M1 family as one more token after the Q-Former's
    /// queries in the DiT's condition (<c>point_projector</c>, <c>action_model.net.point_position</c>, <c>point_uncondition</c>).
    /// </summary>
    public bool PointGuidance { get; init; }
    /// <summary>Default number of Euler steps of <c>SampleActions</c>.</summary>
    public int InferenceSteps { get; init; } = 10;

    // Training
    /// <summary>Factor on the action loss's gradient into the VLM (identity forward). Paper: 0.5.</summary>
    public double GradientDecay { get; init; } = 0.5;
    /// <summary>Fresh noise/time draws per action sample in one loss (the VLM runs once). Paper: 4.</summary>
    public int ActionRepeats { get; init; } = 4;
    /// <summary>Weight of the spatial cross-entropy in the total loss. Paper: 0.1.</summary>
    public double SpatialLossWeight { get; init; } = 0.1;
    /// <summary>Vanilla VLA: no spatial loss and no spatial prompt (the paper's baseline).</summary>
    public bool Vanilla { get; init; }

    /// <summary>Image tokens per camera.</summary>
    [JsonIgnore] public int PatchesPerImage => (ImageSize / PatchSize) * (ImageSize / PatchSize);
    /// <summary>Channels of the convolutional stem's first layer.</summary>
    [JsonIgnore] public int StemChannels1 => Math.Max(8, VisionWidth / 4);
    /// <summary>Channels of the convolutional stem's second layer.</summary>
    [JsonIgnore] public int StemChannels2 => Math.Max(16, VisionWidth / 2);
    /// <summary>Inputs of the point token: target x, y, destination x, y (in [−1, 1]) and one mask per point.</summary>
    internal const int PointGuideFeatures = 6;
    /// <summary>Text plus coordinate tokens.</summary>
    [JsonIgnore] public int VocabSize => TextVocabSize + LocationBins;

    /// <summary>Trains on 2 CPU cores in minutes: 64×64 images, 2-layer ViT/LM/DiT, widths 64–96.</summary>
    public static PolicyConfig Tiny { get; } = new();

    /// <summary>A mid-size model for longer CPU runs or one small GPU.</summary>
    public static PolicyConfig Small { get; } = new()
    {
        Name = "small", ImageSize = 128, PatchSize = 16, VisionWidth = 192, VisionLayers = 4, VisionHeads = 6,
        LmWidth = 384, LmLayers = 6, LmHeads = 6, LmMlpWidth = 1024, LocationBins = 128,
        LatentQueries = 16, BridgeWidth = 192, BridgeLayers = 2, BridgeHeads = 6,
        ExpertWidth = 256, ExpertLayers = 6, ExpertHeads = 8, ChunkLength = 16, MaxActionDim = 14, MaxStateDim = 14,
    };

    /// <summary>
    /// Paper scale: a Qwen2.5-VL-3B-sized decoder (2048 wide, 36 layers, 16 heads, SwiGLU 11008,
    /// 151,936-token vocabulary from its tokenizer.json plus 1,024 coordinate tokens), a ViT-L/28 over
    /// 224×224 images (64 tokens per camera), 64 latent queries through a 768-wide 2-block bridge and a
    /// DiT-B action expert (12 blocks, 768, 12 heads) over 16-step chunks of up to 32 dims.
    /// <see cref="EstimateParameters"/> gives 3.84 B in total: ViT 0.31 B, decoder 3.35 B, bridge 0.018 B,
    /// action expert 0.158 B (the DiT-B carries cross-attention and adaLN, hence above the paper's 86 M;
    /// the paper's whole model is ≈ 4.1 B with Qwen's 0.67 B ViT and DINOv2).
    /// The decoder uses full multi-head attention, not Qwen's grouped KV heads.
    /// </summary>
    public static PolicyConfig Base { get; } = new()
    {
        Name = "base", ImageSize = 224, PatchSize = 28, MaxCameras = 3, VisionWidth = 1024, VisionLayers = 24, VisionHeads = 16,
        LmWidth = 2048, LmLayers = 36, LmHeads = 16, LmMlpWidth = 11008, RopeTheta = 1000000,
        TextVocabSize = 151936, LocationBins = 1024, Tokenizer = "hf", MaxTextTokens = 256, MaxTrajectoryPoints = 16,
        LatentQueries = 64, BridgeWidth = 768, BridgeLayers = 2, BridgeHeads = 8,
        ExpertWidth = 768, ExpertLayers = 12, ExpertHeads = 12, ChunkLength = 16, MaxActionDim = 32, MaxStateDim = 32,
        UseState = false,
    };

    /// <summary>Parameter counts per part, computed from the shapes (equals the built model's count).</summary>
    public ParameterCounts EstimateParameters()
    {
        if (ModelFamily == PolicyFamily.InternVlaM1) return EstimateInternVlaM1();
        static long Linear(long i, long o, bool bias = true) => i * o + (bias ? o : 0);
        static long Ln(long d) => 2 * d;
        static long Encoder(long d) => Ln(d) + Linear(d, d) + Linear(d, 2 * d) + Linear(d, d) + Ln(d) + Linear(d, 4 * d) + Linear(4 * d, d);

        long stem = VisionStemKind == VisionStemKind.Conv
            ? (3L * 9 * StemChannels1 + StemChannels1) + (9L * StemChannels1 * StemChannels2 + StemChannels2)
              + (long)StemChannels2 * (PatchSize / 4) * (PatchSize / 4) * VisionWidth + VisionWidth
            : 3L * VisionWidth * PatchSize * PatchSize + VisionWidth;
        long vision = stem + (long)PatchesPerImage * VisionWidth
            + VisionLayers * Encoder(VisionWidth) + Ln(VisionWidth) + Linear(VisionWidth, LmWidth) + (long)MaxCameras * LmWidth;
        long lmBlock = LmWidth + Linear(LmWidth, 3L * LmWidth, false) + Linear(LmWidth, LmWidth, false)
            + LmWidth + 3 * Linear(LmWidth, LmMlpWidth, false);
        long language = (long)VocabSize * LmWidth + LmLayers * lmBlock + LmWidth;
        long b = BridgeWidth;
        long bridgeBlock = Ln(b) + Linear(b, b) + Linear(b, 2 * b) + Linear(b, b) + Ln(b) + Linear(b, 4 * b) + Linear(4 * b, b);
        long bridge = (long)LatentQueries * LmWidth + 2 * Linear(LmWidth, b) + BridgeLayers * bridgeBlock + Ln(b) + Linear(b, ExpertWidth);
        long e = ExpertWidth;
        long ditBlock = 2 * (Linear(e, e) + Linear(e, 2 * e) + Linear(e, e)) + Ln(e) + Linear(e, 4 * e) + Linear(4 * e, e) + Linear(e, 6 * e);
        long expert = Linear(MaxActionDim, e) + Linear(2L * MaxStateDim, e) + (PointGuidance ? Linear(PointGuideFeatures, e) : 0) + 2 * Linear(e, e) + (ChunkLength + 1L) * e
            + ExpertLayers * ditBlock + Linear(e, 2 * e) + Linear(e, MaxActionDim);
        return new ParameterCounts(vision, language, bridge, expert);
    }

    /// <summary>Serialises to indented JSON (the checkpoint's config.json).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Reads a config written by <see cref="ToJson"/>.</summary>
    public static PolicyConfig FromJson(string json) =>
        JsonSerializer.Deserialize<PolicyConfig>(json, JsonOptions) ?? throw new InvalidDataException("config.json is empty");

    /// <summary>
    /// Checks every size is within its range and the sizes fit together; throws <see cref="ArgumentException"/> naming the
    /// field as config.json spells it. The ranges hold the paper's 4 B model with room to spare; what they keep out is a
    /// config (an uploaded checkpoint's) that would allocate without bound before anything else is checked.
    /// </summary>
    public void Validate()
    {
        if (ModelFamily == PolicyFamily.InternVlaM1)
        {
            ValidateInternVlaM1();
            return;
        }
        if (Qwen is not null || Framework is not null) throw new ArgumentException($"qwen and framework belong to the {InternVlaM1Family} family, not {St4VlaFamily}");
        foreach (var (field, value, min, max) in Ranges())
            if (value < min || value > max)
                throw new ArgumentException($"{JsonOptions.PropertyNamingPolicy!.ConvertName(field)} must be between {min} and {max}, not {value}");
        if (!(double.IsFinite(RopeTheta) && RopeTheta > 0)) throw new ArgumentException("rope_theta must be a positive number");
        if (!double.IsFinite(GradientDecay) || !double.IsFinite(SpatialLossWeight)) throw new ArgumentException("gradient_decay and spatial_loss_weight must be finite");
        if (ImageSize % PatchSize != 0) throw new ArgumentException($"ImageSize {ImageSize} is not a multiple of PatchSize {PatchSize}");
        if (VisionStemKind == VisionStemKind.Conv && PatchSize % 4 != 0) throw new ArgumentException($"a conv stem needs PatchSize divisible by 4, not {PatchSize}");
        if (VisionWidth % VisionHeads != 0 || LmWidth % LmHeads != 0 || BridgeWidth % BridgeHeads != 0 || ExpertWidth % ExpertHeads != 0)
            throw new ArgumentException("every width must be divisible by its head count");
        if ((LmWidth / LmHeads) % 2 != 0) throw new ArgumentException("rotary positions need an even head dimension");
        if (ExpertWidth % 2 != 0) throw new ArgumentException("ExpertWidth must be even");
        if (ChunkLength < 1 || MaxActionDim < 1 || MaxStateDim < 1 || LatentQueries < 1 || LocationBins < 2 || MaxCameras < 1)
            throw new ArgumentException("ChunkLength, MaxActionDim, MaxStateDim, LatentQueries, MaxCameras must be ≥ 1 and LocationBins ≥ 2");
        if (PointGuidance && Vanilla) throw new ArgumentException("PointGuidance reads System 2's spatial answers, which a vanilla policy is not trained to give");
    }

    /// <summary>
    /// An InternVLA-M1 config: the shared fields (chunk, action dimension, image size, DDIM steps) are the family's own
    /// values, so callers that read them (batch samplers, image resizing, evaluation) work for either family.
    /// </summary>
    /// <param name="qwen">Qwen2.5-VL's upstream <c>config.json</c>.</param>
    /// <param name="framework">Upstream's <c>framework</c> section.</param>
    /// <param name="imageSize">Side every camera image is resized to (<c>datasets.vla_data.image_size</c>; 224 released).</param>
    /// <param name="name">Informational name.</param>
    public static PolicyConfig ForInternVlaM1(JsonObject qwen, JsonObject framework, int imageSize = 224, string name = "internvla-m1")
    {
        var config = new PolicyConfig { Family = InternVlaM1Family, Name = name, Qwen = qwen, Framework = framework, ImageSize = imageSize, Tokenizer = "hf", UseState = false, GradientDecay = 1.0 };
        var m1 = config.ToInternVlaM1();
        return config with
        {
            ChunkLength = m1.ChunkLength, MaxActionDim = m1.ActionDim, InferenceSteps = m1.Heads.ActionModel.DdimSteps,
            ActionRepeats = m1.Heads.ActionModel.RepeatedDiffusionSteps, LatentQueries = m1.Heads.QFormer.NumQueryTokens,
        };
    }

    /// <summary>
    /// This config resized for an embodiment of <paramref name="layout"/>: the action and state sizes exactly the
    /// embodiment's (at least 1), one camera slot per camera; every other size unchanged. An InternVLA-M1 config gets the
    /// action size in its action model's <c>action_dim</c> as well, which is what its layers are built from.
    /// </summary>
    public PolicyConfig ForLayout(EmbodimentLayout layout)
    {
        var (actions, states, cameras) = (Math.Max(1, layout.ActionDim), Math.Max(1, layout.StateDim), Math.Max(1, layout.Cameras));
        if (ModelFamily != PolicyFamily.InternVlaM1) return this with { MaxActionDim = actions, MaxStateDim = states, MaxCameras = cameras };
        var framework = (JsonObject)(Framework ?? throw new ArgumentException("framework: an internvla-m1 config needs the framework section")).DeepClone();
        if (framework["action_model"] is not JsonObject actionModel) throw new ArgumentException("framework must hold the action_model section");
        actionModel["action_dim"] = actions;
        return this with { Framework = framework, MaxActionDim = actions, MaxStateDim = states, MaxCameras = cameras };
    }

    /// <summary>The InternVLA-M1 model config this policy config describes (<see cref="InternVlaM1Family"/> only).</summary>
    /// <exception cref="ArgumentException">Another family, or sections that are missing or do not fit together.</exception>
    public InternVlaM1Config ToInternVlaM1()
    {
        if (ModelFamily != PolicyFamily.InternVlaM1) throw new ArgumentException($"a {Family} config has no InternVLA-M1 model");
        var qwenJson = Qwen ?? throw new ArgumentException("qwen: an internvla-m1 config needs Qwen2.5-VL's config.json object");
        var framework = Framework ?? throw new ArgumentException("framework: an internvla-m1 config needs the framework section (dino, layer_qformer, action_model)");
        if (framework["layer_qformer"] is not JsonObject || framework["action_model"] is not JsonObject)
            throw new ArgumentException("framework must hold the layer_qformer and action_model sections");
        Qwen25VlConfig qwen;
        try { qwen = Qwen25VlConfig.FromJson(qwenJson.ToJsonString(), "qwen"); }
        catch (Exception e) when (e is InvalidDataException or CheckpointException) { throw new ArgumentException(e.Message, e); }
        var heads = InternVlaM1Config.HeadsFromFramework(framework, qwen.Text.HiddenSize);
        // Point guidance is VlaCloud's switch, not upstream's, so it comes from this config, not the framework section.
        if (PointGuidance) heads = heads with { ActionModel = heads.ActionModel with { PointToken = true } };
        var dinoResize = framework["dino"] is JsonObject d ? UpstreamJson.Int(d, "resize", 224) : 224;
        var config = new InternVlaM1Config
        {
            Qwen = qwen,
            Heads = heads,
            // The processor's patch grid is the ViT's (14 and 2 released); a small config's finer patches must reach it.
            Processor = new InternVla.Imaging.QwenImageProcessorConfig
            {
                PatchSize = qwen.Vision.PatchSize, MergeSize = qwen.Vision.SpatialMergeSize, TemporalPatchSize = qwen.Vision.TemporalPatchSize,
            },
            CotPrompt = CotPrompt ?? InternVlaM1Config.ReleasedCotPrompt,
            ImageSize = ImageSize,
            DinoShortSide = dinoResize,
            UseState = UseState,
            StateDim = MaxStateDim,
            VlmLossWeight = SpatialLossWeight,
            Vanilla = Vanilla,
        };
        config.Validate();
        return config;
    }

    private void ValidateInternVlaM1()
    {
        var m1 = ToInternVlaM1();
        if (ChunkLength != m1.ChunkLength) throw new ArgumentException($"chunk_length {ChunkLength} must be the action model's future_action_window_size + 1 = {m1.ChunkLength}");
        if (MaxActionDim != m1.ActionDim) throw new ArgumentException($"max_action_dim {MaxActionDim} must be the action model's action_dim {m1.ActionDim}");
        if (ImageSize is < 14 or > 1024) throw new ArgumentException($"image_size must be between 14 and 1024, not {ImageSize}");
        if (MaxCameras is < 1 or > 16) throw new ArgumentException($"max_cameras must be between 1 and 16, not {MaxCameras}");
        if (MaxStateDim is < 1 or > 1024) throw new ArgumentException($"max_state_dim must be between 1 and 1024, not {MaxStateDim}");
        if (InferenceSteps < 1 || InferenceSteps > m1.Heads.ActionModel.DiffusionSteps)
            throw new ArgumentException($"inference_steps must be between 1 and the {m1.Heads.ActionModel.DiffusionSteps} diffusion steps, not {InferenceSteps}");
    }

    /// <summary>Parameter counts of an InternVLA-M1 config from shapes alone (Qwen built on the meta device).</summary>
    private ParameterCounts EstimateInternVlaM1()
    {
        var m1 = ToInternVlaM1();
        var qwen = Qwen25VlCheckpoint.ExpectedTensors(m1.Qwen);
        long Sum(IEnumerable<ParameterShape> shapes) => shapes.Sum(p => p.Count);
        var visual = qwen.Where(t => t.Name.StartsWith("model.visual.", StringComparison.Ordinal)).Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));
        var language = qwen.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b)) - visual;
        var h = m1.Heads;
        var state = m1.UseState ? (2L * m1.StateDim + 1) * h.ActionModel.TokenSize : 0;
        var point = m1.PointGuidance ? (PointGuideFeatures + 1L) * h.ActionModel.TokenSize : 0;
        return new ParameterCounts(
            visual + Sum(h.Dino.ExpectedParameters()) + Sum(ParameterShape.Linear("dino_pro", h.Dino.EmbedDim, h.VlmHiddenSize)),
            language,
            Sum(h.QFormer.ExpectedParameters()) + state + point,
            Sum(h.ActionModel.ExpectedParameters()));
    }

    /// <summary>Each size field with its accepted range.</summary>
    private IEnumerable<(string Field, long Value, long Min, long Max)> Ranges() =>
    [
        (nameof(ImageSize), ImageSize, 8, 1024), (nameof(PatchSize), PatchSize, 1, 256), (nameof(MaxCameras), MaxCameras, 1, 16),
        (nameof(VisionWidth), VisionWidth, 1, 8192), (nameof(VisionLayers), VisionLayers, 1, 128), (nameof(VisionHeads), VisionHeads, 1, 128),
        (nameof(LmWidth), LmWidth, 1, 16384), (nameof(LmLayers), LmLayers, 1, 256), (nameof(LmHeads), LmHeads, 1, 256),
        (nameof(LmMlpWidth), LmMlpWidth, 1, 65536), (nameof(TextVocabSize), TextVocabSize, 1, 1_000_000), (nameof(LocationBins), LocationBins, 2, 4096),
        (nameof(MaxTextTokens), MaxTextTokens, 1, 8192), (nameof(MaxTrajectoryPoints), MaxTrajectoryPoints, 1, 256),
        (nameof(LatentQueries), LatentQueries, 1, 1024), (nameof(BridgeWidth), BridgeWidth, 1, 8192), (nameof(BridgeLayers), BridgeLayers, 1, 64),
        (nameof(BridgeHeads), BridgeHeads, 1, 128), (nameof(ExpertWidth), ExpertWidth, 2, 8192), (nameof(ExpertLayers), ExpertLayers, 1, 128),
        (nameof(ExpertHeads), ExpertHeads, 1, 128), (nameof(ChunkLength), ChunkLength, 1, 1024), (nameof(MaxActionDim), MaxActionDim, 1, 1024),
        (nameof(MaxStateDim), MaxStateDim, 1, 1024), (nameof(InferenceSteps), InferenceSteps, 1, 1000), (nameof(ActionRepeats), ActionRepeats, 1, 64),
    ];

    internal static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}

/// <summary>What an embodiment fixes of a policy's shapes: its action and state sizes and its number of cameras.</summary>
/// <param name="ActionDim">Length of one action vector.</param>
/// <param name="StateDim">Length of the state vector (0 without state).</param>
/// <param name="Cameras">Number of cameras.</param>
public sealed record EmbodimentLayout(int ActionDim, int StateDim, int Cameras);

/// <summary>Parameter counts of the four parts of the model.</summary>
public sealed record ParameterCounts(long Vision, long Language, long Bridge, long ActionExpert)
{
    /// <summary>All parameters.</summary>
    public long Total => Vision + Language + Bridge + ActionExpert;
}
