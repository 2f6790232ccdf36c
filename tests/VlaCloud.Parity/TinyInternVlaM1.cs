using System.Text.Json.Nodes;
using VlaCloud.Policy.InternVla;
using VlaCloud.Policy.InternVla.Imaging;
using VlaCloud.Policy.InternVla.Qwen;
using VlaCloud.Policy.InternVla.Text;

namespace VlaCloud.Parity;

/// <summary>
/// A tiny InternVLA-M1 for tests, every size read from a fixture folder's configs (<c>qwen25vl_tiny</c>, <c>dino_tiny</c>,
/// <c>qformer_tiny</c>, <c>dit_tiny</c>): only what makes the parts fit together is set here — the Q-Former's width and
/// query count are the DiT's, the chunk is the release's 16 steps, images are 56 pixels (4 Qwen tokens, 16 DINO patches),
/// and a byte-level Qwen2 tokenizer (256 byte tokens, then Qwen's 22 added tokens) fits the small vocabulary.
/// </summary>
public static class TinyInternVlaM1
{
    /// <summary>Qwen2.5's added tokens in their order (ids 151643… in the real vocabulary), as <see cref="QwenByteTokenizer"/> has them.</summary>
    public static IReadOnlyList<string> AddedTokens => QwenByteTokenizer.AddedTokens;

    /// <summary>Side of the camera images the tiny config is made for.</summary>
    public const int ImageSize = 56;

    /// <summary>Action chunk length (the release's).</summary>
    public const int ChunkLength = 16;

    /// <summary>The repository's InternVLA-M1 fixture folder.</summary>
    public static string FixtureFolder { get; } = FindFixtures();

    /// <summary>A byte-level Qwen2 <c>tokenizer.json</c>: the 256 byte symbols, no merges, the added tokens after them.</summary>
    public static string TokenizerJson() => QwenByteTokenizer.Json();

    /// <summary>The tokenizer of <see cref="TokenizerJson"/>.</summary>
    public static Qwen2Tokenizer Tokenizer()
    {
        using var stream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(TokenizerJson()));
        return Qwen2Tokenizer.FromTokenizerJson(stream);
    }

    /// <summary>The fixture's Qwen2.5-VL config with the vocabulary and vision token ids of <see cref="Tokenizer"/>.</summary>
    public static JsonObject QwenConfigJson()
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureFolder, "qwen25vl_tiny.config.json")))!.AsObject();
        int Id(string token) => 256 + AddedTokens.ToList().IndexOf(token);
        var vocab = 256 + AddedTokens.Count + 10;
        json["vocab_size"] = vocab;
        json["text_config"]!["vocab_size"] = vocab;
        foreach (var node in new[] { json, json["text_config"]!.AsObject() })
        {
            node["image_token_id"] = Id("<|image_pad|>");
            node["video_token_id"] = Id("<|video_pad|>");
            node["vision_start_token_id"] = Id("<|vision_start|>");
            node["vision_end_token_id"] = Id("<|vision_end|>");
            node["bos_token_id"] = Id("<|endoftext|>");
            node["eos_token_id"] = Id("<|im_end|>");
        }
        return json;
    }

    /// <summary>
    /// Upstream's <c>framework</c> section for the tiny heads, with VlaCloud's size keys (see
    /// <see cref="InternVlaM1Config.HeadsFromFramework"/>).
    /// </summary>
    public static JsonObject FrameworkJson()
    {
        var dino = HeadsFixtures.Dino(FixtureFolder);
        var qformer = HeadsFixtures.QFormer(FixtureFolder);
        var dit = HeadsFixtures.Dit(FixtureFolder);
        return new JsonObject
        {
            ["dino"] = new JsonObject
            {
                ["dino_backbone"] = "dinov2_vits14", ["img_size"] = dino.ImageSize, ["patch_size"] = dino.PatchSize, ["embed_dim"] = dino.EmbedDim,
                ["depth"] = dino.Depth, ["num_heads"] = dino.NumHeads, ["mlp_ratio"] = dino.MlpRatio, ["resize"] = ImageSize,
            },
            ["layer_qformer"] = new JsonObject
            {
                ["qformer_start_layer"] = qformer.StartLayer, ["qformer_end_layer"] = qformer.EndLayer, ["num_query_tokens"] = dit.ConditionTokens,
                ["input_dim"] = qformer.InputDim, ["ouptput_dim"] = dit.TokenSize, ["grad_scale"] = qformer.GradScale,
                ["num_heads"] = qformer.NumHeads, ["mlp_ratio"] = qformer.MlpRatio, ["dropout"] = qformer.Dropout,
            },
            ["action_model"] = new JsonObject
            {
                ["action_model_type"] = "DiT-B", ["action_dim"] = dit.ActionDim, ["future_action_window_size"] = ChunkLength - 1, ["past_action_window_size"] = 0,
                ["depth"] = dit.Depth, ["token_size"] = dit.TokenSize, ["num_heads"] = dit.NumHeads, ["mlp_ratio"] = dit.MlpRatio,
                ["class_dropout_prob"] = dit.ClassDropoutProb, ["diffusion_steps"] = dit.DiffusionSteps, ["repeated_diffusion_steps"] = dit.RepeatedDiffusionSteps,
                ["ddim_steps"] = dit.DdimSteps, ["cfg_scale"] = dit.CfgScale,
            },
        };
    }

    /// <summary>The tiny model's config.</summary>
    public static InternVlaM1Config Config()
    {
        var qwen = Qwen25VlConfig.FromJson(QwenConfigJson().ToJsonString());
        return new InternVlaM1Config
        {
            Qwen = qwen,
            Heads = InternVlaM1Config.HeadsFromFramework(FrameworkJson(), qwen.Text.HiddenSize),
            Processor = new QwenImageProcessorConfig { MinPixels = ImageSize * ImageSize, MaxPixels = 4L * ImageSize * ImageSize },
            ImageSize = ImageSize,
            DinoShortSide = ImageSize,
        };
    }

    /// <summary>The tiny model as a policy config of the <c>internvla-m1</c> family (what a checkpoint's config.json holds).</summary>
    public static Policy.PolicyConfig PolicyConfig() =>
        Policy.PolicyConfig.ForInternVlaM1(QwenConfigJson(), FrameworkJson(), ImageSize, "internvla-m1-tiny");

    /// <summary>
    /// Overfits an <c>internvla-m1</c> policy on spatial samples alone (the co-training VLM loss, AdamW on the Qwen
    /// group) so that greedy decoding gives back their answers; returns the last loss. The tiny config's byte-level
    /// vocabulary spells an answer a character a token, about 30 tokens for a box.
    /// </summary>
    public static double TeachSpatial(Policy.VlaPolicy policy, IReadOnlyList<Policy.SpatialSample> samples, int steps = 150, double learningRate = 3e-3)
    {
        using var optimizer = policy.CreateOptimizer(vlmLr: learningRate, expertLr: 0, restLr: 0, weightDecay: 0);
        var batch = new Policy.TrainingBatch([], samples);
        var loss = double.NaN;
        for (var step = 0; step < steps; step++)
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            optimizer.zero_grad();
            var total = policy.ComputeLoss(batch).Total;
            total.backward();
            optimizer.step();
            loss = total.item<float>();
        }
        return loss;
    }

    private static string FindFixtures()
    {
        if (Environment.GetEnvironmentVariable("VLACLOUD_FIXTURES") is { Length: > 0 } custom) return custom;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "VlaCloud.sln"))) return Path.Combine(dir.FullName, "tests", "fixtures", "internvla-m1");
        throw new InvalidOperationException($"VlaCloud.sln not found above {AppContext.BaseDirectory}.");
    }
}
