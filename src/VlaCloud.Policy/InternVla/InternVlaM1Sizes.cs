using System.Text.Json.Nodes;
using VlaCloud.Policy.InternVla.Text;

namespace VlaCloud.Policy.InternVla;

/// <summary>
/// The sizes of a small InternVLA-M1 trained from scratch (the built-in <c>m1-tiny</c> and <c>m1-small</c> configs):
/// <see cref="ToPolicyConfig"/> writes them into the same upstream <c>config.json</c> and <c>framework</c> sections a
/// released checkpoint carries, so the model is built by exactly the code that builds the released one.
/// </summary>
/// <remarks>
/// Defaults are <see cref="Tiny"/>'s. Images are the simulator's 64×64: Qwen's ViT takes 4-pixel patches merged 2×2 into
/// one LM token per 8×8 pixels (64 tokens a camera) and the DINO stream 8-pixel patches, so a ~7-pixel object covers
/// about one token of either stream rather than a fraction of a 28-pixel one. The state is off, as released.
/// </remarks>
public sealed record InternVlaM1Sizes
{
    /// <summary>The config's name (<c>m1-tiny</c>, <c>m1-small</c>).</summary>
    public string Name { get; init; } = "m1-tiny";
    /// <summary>Side every camera image is resized to.</summary>
    public int ImageSize { get; init; } = 64;
    /// <summary>Qwen decoder width.</summary>
    public int Hidden { get; init; } = 64;
    /// <summary>Qwen decoder layers.</summary>
    public int Layers { get; init; } = 2;
    /// <summary>Qwen attention heads.</summary>
    public int Heads { get; init; } = 4;
    /// <summary>Qwen key/value heads (grouped-query attention, as released).</summary>
    public int KeyValueHeads { get; init; } = 2;
    /// <summary>Qwen SwiGLU width.</summary>
    public int Mlp { get; init; } = 128;
    /// <summary>Qwen ViT patch side in pixels.</summary>
    public int VisionPatch { get; init; } = 4;
    /// <summary>Qwen ViT patches per side merged into one LM token.</summary>
    public int VisionMerge { get; init; } = 2;
    /// <summary>Qwen ViT width.</summary>
    public int VisionHidden { get; init; } = 32;
    /// <summary>Qwen ViT blocks (the last one with full attention, the rest windowed).</summary>
    public int VisionDepth { get; init; } = 2;
    /// <summary>Qwen ViT heads.</summary>
    public int VisionHeads { get; init; } = 2;
    /// <summary>Qwen ViT window side in pixels.</summary>
    public int VisionWindow { get; init; } = 32;
    /// <summary>DINO patch side in pixels.</summary>
    public int DinoPatch { get; init; } = 8;
    /// <summary>DINO width.</summary>
    public int DinoWidth { get; init; } = 32;
    /// <summary>DINO blocks.</summary>
    public int DinoDepth { get; init; } = 2;
    /// <summary>DINO heads.</summary>
    public int DinoHeads { get; init; } = 2;
    /// <summary>Q-Former query tokens (the DiT's condition tokens).</summary>
    public int Queries { get; init; } = 8;
    /// <summary>Q-Former heads.</summary>
    public int QFormerHeads { get; init; } = 4;
    /// <summary>DiT width (the Q-Former's output width).</summary>
    public int DitWidth { get; init; } = 64;
    /// <summary>DiT blocks.</summary>
    public int DitDepth { get; init; } = 2;
    /// <summary>DiT heads.</summary>
    public int DitHeads { get; init; } = 4;
    /// <summary>Action chunk length (the simulator's 8).</summary>
    public int ChunkLength { get; init; } = 8;
    /// <summary>DiT action dimension; smaller embodiments are padded with zeros.</summary>
    public int ActionDim { get; init; } = 8;
    /// <summary>DDIM steps when acting.</summary>
    public int DdimSteps { get; init; } = 10;

    /// <summary>Trains on 2 CPU cores: a 64-wide, 2-layer Qwen, 2-block DINO and DiT.</summary>
    public static InternVlaM1Sizes Tiny { get; } = new();

    /// <summary>Twice as wide and deep, for longer CPU runs.</summary>
    public static InternVlaM1Sizes Small { get; } = new()
    {
        Name = "m1-small", Hidden = 128, Layers = 4, Heads = 4, KeyValueHeads = 2, Mlp = 384, VisionHidden = 64, VisionDepth = 4, VisionHeads = 4,
        DinoWidth = 64, DinoDepth = 4, DinoHeads = 4, Queries = 16, QFormerHeads = 4, DitWidth = 128, DitDepth = 4, DitHeads = 4,
    };

    /// <summary>The built-in configs by name.</summary>
    public static IReadOnlyDictionary<string, InternVlaM1Sizes> BuiltIn { get; } = new Dictionary<string, InternVlaM1Sizes>
    {
        [Tiny.Name] = Tiny, [Small.Name] = Small,
    };

    /// <summary>
    /// The policy config: Qwen2.5-VL's <c>config.json</c> with the byte-level vocabulary of
    /// <see cref="QwenByteTokenizer"/>, the <c>framework</c> section with VlaCloud's size keys, the state off.
    /// </summary>
    public PolicyConfig ToPolicyConfig() => PolicyConfig.ForInternVlaM1(QwenJson(), FrameworkJson(), ImageSize, Name);

    /// <summary>Qwen2.5-VL's upstream <c>config.json</c> for these sizes.</summary>
    public JsonObject QwenJson()
    {
        // M-RoPE splits half the head dimension over time, height and width as Qwen does (16/24/24 of 64 released).
        var half = Hidden / Heads / 2;
        var time = half / 4;
        var height = (half - time) / 2;
        var ids = QwenByteTokenizer.Ids;
        var text = new JsonObject
        {
            ["model_type"] = "qwen2_5_vl_text", ["hidden_act"] = "silu", ["hidden_size"] = Hidden, ["intermediate_size"] = Mlp,
            ["num_hidden_layers"] = Layers, ["num_attention_heads"] = Heads, ["num_key_value_heads"] = KeyValueHeads, ["rms_norm_eps"] = 1e-6,
            ["rope_theta"] = 1000000.0, ["rope_scaling"] = new JsonObject { ["type"] = "default", ["mrope_section"] = new JsonArray(time, height, half - time - height) },
            ["vocab_size"] = QwenByteTokenizer.VocabSize, ["tie_word_embeddings"] = true,
        };
        var root = (JsonObject)text.DeepClone();
        root["model_type"] = "qwen2_5_vl";
        foreach (var node in new[] { root, text })
        {
            node["image_token_id"] = ids["<|image_pad|>"];
            node["video_token_id"] = ids["<|video_pad|>"];
            node["vision_start_token_id"] = ids["<|vision_start|>"];
            node["vision_end_token_id"] = ids["<|vision_end|>"];
            node["bos_token_id"] = ids["<|endoftext|>"];
            node["eos_token_id"] = ids["<|im_end|>"];
        }
        root["text_config"] = text;
        root["vision_config"] = new JsonObject
        {
            ["hidden_act"] = "silu", ["depth"] = VisionDepth, ["hidden_size"] = VisionHidden, ["intermediate_size"] = 2 * VisionHidden, ["num_heads"] = VisionHeads,
            ["in_channels"] = 3, ["patch_size"] = VisionPatch, ["spatial_merge_size"] = VisionMerge, ["temporal_patch_size"] = 2, ["tokens_per_second"] = 2,
            ["window_size"] = VisionWindow, ["out_hidden_size"] = Hidden, ["fullatt_block_indexes"] = new JsonArray(VisionDepth - 1),
        };
        return root;
    }

    /// <summary>Upstream's <c>framework</c> section with VlaCloud's size keys (see <see cref="InternVlaM1Config.HeadsFromFramework"/>).</summary>
    public JsonObject FrameworkJson() => new()
    {
        ["dino"] = new JsonObject
        {
            ["dino_backbone"] = "dinov2_vits14", ["img_size"] = ImageSize, ["patch_size"] = DinoPatch, ["embed_dim"] = DinoWidth,
            ["depth"] = DinoDepth, ["num_heads"] = DinoHeads, ["mlp_ratio"] = 4.0, ["resize"] = ImageSize,
        },
        ["layer_qformer"] = new JsonObject
        {
            // Every hidden state but the embeddings', as the release reads the last layers of its 36.
            ["qformer_start_layer"] = 1, ["qformer_end_layer"] = Layers + 1, ["num_query_tokens"] = Queries, ["input_dim"] = Hidden,
            ["ouptput_dim"] = DitWidth, ["grad_scale"] = 0.5, ["num_heads"] = QFormerHeads, ["mlp_ratio"] = 4.0, ["dropout"] = 0.1,
        },
        ["action_model"] = new JsonObject
        {
            ["action_model_type"] = "DiT-B", ["action_dim"] = ActionDim, ["future_action_window_size"] = ChunkLength - 1, ["past_action_window_size"] = 0,
            ["depth"] = DitDepth, ["token_size"] = DitWidth, ["num_heads"] = DitHeads, ["mlp_ratio"] = 4.0, ["class_dropout_prob"] = 0.1,
            ["diffusion_steps"] = 100, ["repeated_diffusion_steps"] = 4, ["ddim_steps"] = DdimSteps, ["cfg_scale"] = 1.5,
        },
    };
}

/// <summary>
/// Qwen2's tokenizer with the byte-level base vocabulary only: the 256 byte symbols, no merges, then Qwen2.5's 22 added
/// tokens in their order. It keeps Qwen2's pre-tokenizer, byte mapping, chat template tokens and special ids, so prompts
/// and JSON answers are the same text as with the full vocabulary, one token a byte; the embedding has 278 rows instead
/// of 151,665 (which at width 64 would be 9.7 M parameters, most of a tiny model, for words the simulator never says).
/// </summary>
public static class QwenByteTokenizer
{
    /// <summary>Qwen2.5's added tokens in their order (ids 151643… in the full vocabulary, 256… here).</summary>
    public static IReadOnlyList<string> AddedTokens { get; } =
    [
        "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>",
        "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
        "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
    ];

    /// <summary>Rows of the embedding: 256 bytes and the added tokens.</summary>
    public static int VocabSize => 256 + AddedTokens.Count;

    /// <summary>Each added token's id.</summary>
    public static IReadOnlyDictionary<string, int> Ids { get; } = AddedTokens.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => 256 + p.i);

    /// <summary>The Hugging Face <c>tokenizer.json</c> (saved in every checkpoint of the built-in M1 configs).</summary>
    public static string Json()
    {
        var vocab = new JsonObject();
        var symbols = ByteSymbols();
        for (var i = 0; i < symbols.Count; i++) vocab[symbols[i]] = i;
        var added = new JsonArray();
        foreach (var (token, id) in Ids)
            added.Add(new JsonObject { ["id"] = id, ["content"] = token, ["special"] = true, ["lstrip"] = false, ["rstrip"] = false, ["single_word"] = false, ["normalized"] = false });
        return new JsonObject
        {
            ["added_tokens"] = added,
            ["normalizer"] = new JsonObject { ["type"] = "NFC" },
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = Qwen2Tokenizer.PreTokenizerPattern }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false }),
            },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray() },
        }.ToJsonString();
    }

    /// <summary>GPT-2's byte-to-symbol table (<c>bytes_to_unicode</c>) in byte order.</summary>
    private static List<string> ByteSymbols()
    {
        var printable = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range('¡', '¬' - '¡' + 1)).Concat(Enumerable.Range('®', 'ÿ' - '®' + 1)).ToHashSet();
        var symbols = new string[256];
        var extra = 0;
        for (var b = 0; b < 256; b++) symbols[b] = printable.Contains(b) ? ((char)b).ToString() : ((char)(256 + extra++)).ToString();
        return [.. symbols];
    }
}
