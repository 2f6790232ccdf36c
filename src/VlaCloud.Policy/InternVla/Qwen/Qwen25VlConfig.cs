using System.Text.Json;
using System.Text.Json.Nodes;

namespace VlaCloud.Policy.InternVla.Qwen;

/// <summary>
/// Sizes of the Qwen2.5-VL vision tower: transformers' <c>Qwen2_5_VLVisionConfig</c> (its defaults where
/// <c>vision_config</c> leaves a field out).
/// </summary>
public sealed record QwenVisionConfig
{
    /// <summary>Number of blocks (<c>depth</c>).</summary>
    public int Depth { get; init; } = 32;
    /// <summary>Block width (<c>hidden_size</c>).</summary>
    public int HiddenSize { get; init; } = 3584;
    /// <summary>Gated MLP width (<c>intermediate_size</c>).</summary>
    public int IntermediateSize { get; init; } = 3420;
    /// <summary>Attention heads (<c>num_heads</c>).</summary>
    public int NumHeads { get; init; } = 16;
    /// <summary>Image channels (<c>in_channels</c>).</summary>
    public int InChannels { get; init; } = 3;
    /// <summary>Patch side in pixels (<c>patch_size</c>).</summary>
    public int PatchSize { get; init; } = 14;
    /// <summary>Side of the square of patches the merger folds into one LM token (<c>spatial_merge_size</c>).</summary>
    public int SpatialMergeSize { get; init; } = 2;
    /// <summary>Frames per patch (<c>temporal_patch_size</c>; an image is its own frame twice).</summary>
    public int TemporalPatchSize { get; init; } = 2;
    /// <summary>Temporal position step of video frames (<c>tokens_per_second</c>; images always take 0).</summary>
    public int TokensPerSecond { get; init; } = 4;
    /// <summary>Side of an attention window in pixels (<c>window_size</c>).</summary>
    public int WindowSize { get; init; } = 112;
    /// <summary>Width of the merger's output, the LM width (<c>out_hidden_size</c>).</summary>
    public int OutHiddenSize { get; init; } = 3584;
    /// <summary>Blocks that attend over the whole image instead of windows (<c>fullatt_block_indexes</c>).</summary>
    public IReadOnlyList<int> FullAttentionBlockIndexes { get; init; } = [7, 15, 23, 31];

    /// <summary>Width of one head.</summary>
    public int HeadDim => HiddenSize / NumHeads;
    /// <summary>Values per row of <c>pixel_values</c>: channels × frames × patch².</summary>
    public int PatchValues => InChannels * TemporalPatchSize * PatchSize * PatchSize;
    /// <summary>Patches merged into one LM token.</summary>
    public int MergeUnit => SpatialMergeSize * SpatialMergeSize;
    /// <summary>Side of an attention window in merged tokens (transformers' <c>vit_merger_window_size</c>).</summary>
    public int WindowMergedTokens => WindowSize / SpatialMergeSize / PatchSize;
}

/// <summary>
/// Sizes of the Qwen2.5 decoder: transformers' <c>Qwen2_5_VLTextConfig</c> (its defaults where a field is left out).
/// </summary>
public sealed record QwenTextConfig
{
    /// <summary>Embedding rows and logits (<c>vocab_size</c>).</summary>
    public int VocabSize { get; init; } = 152064;
    /// <summary>Decoder width (<c>hidden_size</c>).</summary>
    public int HiddenSize { get; init; } = 8192;
    /// <summary>SwiGLU width (<c>intermediate_size</c>).</summary>
    public int IntermediateSize { get; init; } = 29568;
    /// <summary>Decoder layers (<c>num_hidden_layers</c>).</summary>
    public int NumHiddenLayers { get; init; } = 80;
    /// <summary>Query heads (<c>num_attention_heads</c>).</summary>
    public int NumAttentionHeads { get; init; } = 64;
    /// <summary>Key/value heads, fewer than query heads for grouped-query attention (<c>num_key_value_heads</c>).</summary>
    public int NumKeyValueHeads { get; init; } = 8;
    /// <summary>RMSNorm epsilon (<c>rms_norm_eps</c>).</summary>
    public double RmsNormEps { get; init; } = 1e-5;
    /// <summary>Rotary base (<c>rope_theta</c>).</summary>
    public double RopeTheta { get; init; } = 1_000_000;
    /// <summary>
    /// Rotary frequency pairs given to the temporal, height and width position (<c>rope_scaling.mrope_section</c>);
    /// they sum to half the head width.
    /// </summary>
    public IReadOnlyList<int> MropeSection { get; init; } = [16, 24, 24];
    /// <summary>Whether <c>lm_head</c> is the token embedding (<c>tie_word_embeddings</c>).</summary>
    public bool TieWordEmbeddings { get; init; }

    /// <summary>Width of one head.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;
}

/// <summary>
/// A Qwen2.5-VL config as transformers reads <c>config.json</c> (<c>Qwen2_5_VLConfig</c>): the decoder from
/// <c>text_config</c>, or from the top level when there is none (the layout of the published hub files), the vision
/// tower from <c>vision_config</c>, and the special token ids. Every size of the model comes from here.
/// </summary>
public sealed record Qwen25VlConfig
{
    /// <summary>The largest config.json read; real ones are a few kilobytes.</summary>
    public const int MaxConfigBytes = 4 << 20;

    /// <summary>The decoder.</summary>
    public QwenTextConfig Text { get; init; } = new();
    /// <summary>The vision tower.</summary>
    public QwenVisionConfig Vision { get; init; } = new();
    /// <summary>The placeholder token each merged image patch replaces (<c>image_token_id</c>).</summary>
    public long ImageTokenId { get; init; } = 151655;
    /// <summary>The video placeholder (<c>video_token_id</c>); videos are refused.</summary>
    public long VideoTokenId { get; init; } = 151656;
    /// <summary>The token that opens an image (<c>vision_start_token_id</c>).</summary>
    public long VisionStartTokenId { get; init; } = 151652;
    /// <summary>The token that closes an image (<c>vision_end_token_id</c>).</summary>
    public long VisionEndTokenId { get; init; } = 151653;
    /// <summary>End-of-sequence ids of the text config (<c>eos_token_id</c>, one or a list; empty when absent).</summary>
    public IReadOnlyList<long> EosTokenIds { get; init; } = [];

    /// <summary>
    /// The JSON this config was read from: <see cref="ToJson"/> keeps its other fields (generation defaults,
    /// architectures, …) and its layout (nested <c>text_config</c> or flat).
    /// </summary>
    public string? SourceJson { get; init; }

    /// <summary>Reads <c>config.json</c>; throws <see cref="CheckpointException"/> naming the field that is wrong.</summary>
    public static Qwen25VlConfig Read(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new CheckpointException($"{info.Name} is missing in {info.DirectoryName}");
        if (info.Length > MaxConfigBytes) throw new CheckpointException($"{info.Name} is {info.Length} bytes, more than a config can be ({MaxConfigBytes})");
        return FromJson(File.ReadAllText(path), info.Name);
    }

    /// <summary>Parses config.json text (see <see cref="Read"/>).</summary>
    public static Qwen25VlConfig FromJson(string json, string fileName = "config.json")
    {
        JsonObject root;
        try { root = JsonNode.Parse(json) as JsonObject ?? throw new JsonException("not a JSON object"); }
        catch (JsonException e) { throw new CheckpointException($"{fileName}: not valid JSON ({e.Message})"); }
        var reader = new FieldReader(fileName);

        // transformers builds the text config from the top-level keys when there is no text_config (hub config.json files).
        var textNode = root["text_config"] as JsonObject;
        var text = textNode ?? root;
        var textPath = textNode is null ? "" : "text_config.";
        var vision = root["vision_config"] as JsonObject ?? new JsonObject();
        var defaults = new Qwen25VlConfig();
        var (t, v) = (defaults.Text, defaults.Vision);

        var rope = text["rope_scaling"] as JsonObject
            ?? throw new CheckpointException($"{fileName}: {textPath}rope_scaling is missing; Qwen2.5-VL needs its mrope_section");
        var ropeType = (string?)(rope["rope_type"] ?? rope["type"]) ?? "default";
        // transformers renames the old "mrope" type to "default": M-RoPE is default RoPE split over three position axes.
        if (ropeType is not ("default" or "mrope"))
            throw new CheckpointException($"{fileName}: {textPath}rope_scaling type '{ropeType}' is not supported (only default M-RoPE)");
        if (reader.Bool(text, textPath, "use_sliding_window", false))
            throw new CheckpointException($"{fileName}: {textPath}use_sliding_window is true; sliding-window attention is not supported");
        reader.Activation(text, textPath);
        reader.Activation(vision, "vision_config.");

        var config = new Qwen25VlConfig
        {
            Text = new QwenTextConfig
            {
                VocabSize = reader.Size(text, textPath, "vocab_size", t.VocabSize, 1 << 24),
                HiddenSize = reader.Size(text, textPath, "hidden_size", t.HiddenSize, 1 << 16),
                IntermediateSize = reader.Size(text, textPath, "intermediate_size", t.IntermediateSize, 1 << 18),
                NumHiddenLayers = reader.Size(text, textPath, "num_hidden_layers", t.NumHiddenLayers, 1 << 10),
                NumAttentionHeads = reader.Size(text, textPath, "num_attention_heads", t.NumAttentionHeads, 1 << 10),
                // transformers: a missing (or null) num_key_value_heads means one key/value head per query head.
                NumKeyValueHeads = reader.Size(text, textPath, "num_key_value_heads",
                    reader.Size(text, textPath, "num_attention_heads", t.NumAttentionHeads, 1 << 10), 1 << 10),
                RmsNormEps = reader.Real(text, textPath, "rms_norm_eps", t.RmsNormEps),
                RopeTheta = reader.Real(text, textPath, "rope_theta", t.RopeTheta),
                MropeSection = reader.Sizes(rope, textPath + "rope_scaling.", "mrope_section", null, 1 << 12),
                TieWordEmbeddings = reader.Bool(text, textPath, "tie_word_embeddings", t.TieWordEmbeddings),
            },
            Vision = new QwenVisionConfig
            {
                Depth = reader.Size(vision, "vision_config.", "depth", v.Depth, 1 << 10),
                HiddenSize = reader.Size(vision, "vision_config.", "hidden_size", v.HiddenSize, 1 << 16),
                IntermediateSize = reader.Size(vision, "vision_config.", "intermediate_size", v.IntermediateSize, 1 << 18),
                NumHeads = reader.Size(vision, "vision_config.", "num_heads", v.NumHeads, 1 << 10),
                InChannels = reader.Size(vision, "vision_config.", "in_channels", v.InChannels, 64),
                PatchSize = reader.Size(vision, "vision_config.", "patch_size", v.PatchSize, 1 << 10),
                SpatialMergeSize = reader.Size(vision, "vision_config.", "spatial_merge_size", v.SpatialMergeSize, 64),
                TemporalPatchSize = reader.Size(vision, "vision_config.", "temporal_patch_size", v.TemporalPatchSize, 64),
                TokensPerSecond = reader.Size(vision, "vision_config.", "tokens_per_second", v.TokensPerSecond, 1 << 16),
                WindowSize = reader.Size(vision, "vision_config.", "window_size", v.WindowSize, 1 << 16),
                OutHiddenSize = reader.Size(vision, "vision_config.", "out_hidden_size", v.OutHiddenSize, 1 << 16),
                FullAttentionBlockIndexes = reader.Sizes(vision, "vision_config.", "fullatt_block_indexes", v.FullAttentionBlockIndexes, 1 << 10, allowZero: true),
            },
            // The VL config keeps the token ids at its top level; hub files also repeat some inside text_config.
            ImageTokenId = reader.TokenId(root, text, "image_token_id", defaults.ImageTokenId),
            VideoTokenId = reader.TokenId(root, text, "video_token_id", defaults.VideoTokenId),
            VisionStartTokenId = reader.TokenId(root, text, "vision_start_token_id", defaults.VisionStartTokenId),
            VisionEndTokenId = reader.TokenId(root, text, "vision_end_token_id", defaults.VisionEndTokenId),
            EosTokenIds = reader.TokenIds(text, textPath, "eos_token_id"),
            SourceJson = json,
        };
        config.Validate(fileName);
        return config;
    }

    /// <summary>
    /// config.json in transformers' format: the fields this record holds written over <see cref="SourceJson"/> (or a
    /// fresh nested config), so a config changed with <c>with</c> is saved as it now is.
    /// </summary>
    public string ToJson()
    {
        var root = SourceJson is null ? new JsonObject { ["model_type"] = "qwen2_5_vl", ["text_config"] = new JsonObject() } : (JsonObject)JsonNode.Parse(SourceJson)!;
        var text = root["text_config"] as JsonObject ?? root;
        var t = Text;
        text["vocab_size"] = t.VocabSize;
        text["hidden_size"] = t.HiddenSize;
        text["intermediate_size"] = t.IntermediateSize;
        text["num_hidden_layers"] = t.NumHiddenLayers;
        text["num_attention_heads"] = t.NumAttentionHeads;
        text["num_key_value_heads"] = t.NumKeyValueHeads;
        text["hidden_act"] = "silu";
        text["rms_norm_eps"] = t.RmsNormEps;
        text["rope_theta"] = t.RopeTheta;
        var rope = text["rope_scaling"] as JsonObject ?? new JsonObject { ["type"] = "default", ["rope_type"] = "default" };
        rope["mrope_section"] = new JsonArray([.. t.MropeSection.Select(n => (JsonNode)n)]);
        text["rope_scaling"] = rope;
        text["tie_word_embeddings"] = t.TieWordEmbeddings;
        // A nested config read by older code would look at the top level; keep both saying the same.
        if (!ReferenceEquals(text, root)) root["tie_word_embeddings"] = t.TieWordEmbeddings;
        if (EosTokenIds.Count > 0) text["eos_token_id"] = EosTokenIds.Count == 1 ? EosTokenIds[0] : new JsonArray([.. EosTokenIds.Select(n => (JsonNode)n)]);
        var v = Vision;
        var vision = root["vision_config"] as JsonObject ?? new JsonObject();
        vision["depth"] = v.Depth;
        vision["hidden_size"] = v.HiddenSize;
        vision["hidden_act"] = "silu";
        vision["intermediate_size"] = v.IntermediateSize;
        vision["num_heads"] = v.NumHeads;
        vision["in_channels"] = v.InChannels;
        vision["patch_size"] = v.PatchSize;
        vision["spatial_merge_size"] = v.SpatialMergeSize;
        vision["temporal_patch_size"] = v.TemporalPatchSize;
        vision["tokens_per_second"] = v.TokensPerSecond;
        vision["window_size"] = v.WindowSize;
        vision["out_hidden_size"] = v.OutHiddenSize;
        vision["fullatt_block_indexes"] = new JsonArray([.. v.FullAttentionBlockIndexes.Select(n => (JsonNode)n)]);
        root["vision_config"] = vision;
        root["image_token_id"] = ImageTokenId;
        root["video_token_id"] = VideoTokenId;
        root["vision_start_token_id"] = VisionStartTokenId;
        root["vision_end_token_id"] = VisionEndTokenId;
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Checks the sizes fit together (heads divide widths, sections fill the head, windows hold whole tokens).</summary>
    public void Validate(string fileName = "config.json")
    {
        void Require(bool ok, string message)
        {
            if (!ok) throw new CheckpointException($"{fileName}: {message}");
        }
        var (t, v) = (Text, Vision);
        Require(t.HiddenSize % t.NumAttentionHeads == 0, $"hidden_size {t.HiddenSize} is not divisible by num_attention_heads {t.NumAttentionHeads}");
        Require(t.NumAttentionHeads % t.NumKeyValueHeads == 0, $"num_attention_heads {t.NumAttentionHeads} is not divisible by num_key_value_heads {t.NumKeyValueHeads}");
        Require(t.HeadDim % 2 == 0, $"the decoder head width {t.HeadDim} is odd");
        Require(t.MropeSection.Count == 3 && t.MropeSection.Sum() * 2 == t.HeadDim,
            $"rope_scaling.mrope_section [{string.Join(", ", t.MropeSection)}] must be three sections summing to half the head width {t.HeadDim}");
        Require(t.RmsNormEps > 0 && t.RopeTheta > 1, "rms_norm_eps must be positive and rope_theta above 1");
        Require(v.HiddenSize % v.NumHeads == 0, $"vision_config.hidden_size {v.HiddenSize} is not divisible by num_heads {v.NumHeads}");
        // The 2-D rotary gives a quarter of each head to the row and a quarter to the column position, then repeats.
        Require(v.HeadDim % 4 == 0, $"the vision head width {v.HeadDim} is not divisible by 4");
        Require(v.WindowMergedTokens >= 1, $"vision_config.window_size {v.WindowSize} is smaller than one merged token ({v.SpatialMergeSize * v.PatchSize} px)");
        Require(v.FullAttentionBlockIndexes.All(i => i < v.Depth), $"vision_config.fullatt_block_indexes [{string.Join(", ", v.FullAttentionBlockIndexes)}] names a block beyond depth {v.Depth}");
        Require(v.OutHiddenSize == t.HiddenSize, $"vision_config.out_hidden_size {v.OutHiddenSize} differs from the decoder width {t.HiddenSize}");
    }

    /// <summary>Reads fields with their names in messages; sizes are bounded so nothing is sized from a hostile number.</summary>
    private sealed class FieldReader(string fileName)
    {
        public int Size(JsonObject node, string path, string key, int fallback, int max) => node[key] switch
        {
            null => fallback,
            JsonValue value when value.TryGetValue<long>(out var n) && n >= 1 && n <= max => (int)n,
            var other => throw Bad(path + key, other, $"a whole number from 1 to {max}"),
        };

        public double Real(JsonObject node, string path, string key, double fallback) => node[key] switch
        {
            null => fallback,
            JsonValue value when value.TryGetValue<double>(out var d) && double.IsFinite(d) => d,
            var other => throw Bad(path + key, other, "a finite number"),
        };

        public bool Bool(JsonObject node, string path, string key, bool fallback) => node[key] switch
        {
            null => fallback,
            JsonValue value when value.TryGetValue<bool>(out var b) => b,
            var other => throw Bad(path + key, other, "true or false"),
        };

        public IReadOnlyList<int> Sizes(JsonObject node, string path, string key, IReadOnlyList<int>? fallback, int max, bool allowZero = false)
        {
            var min = allowZero ? 0 : 1;
            switch (node[key])
            {
                case null when fallback is not null:
                    return fallback;
                case JsonArray array when array.Count <= 1024 && array.All(e => e is JsonValue ev && ev.TryGetValue<long>(out var n) && n >= min && n <= max):
                    return [.. array.Select(e => (int)(long)e!)];
                case var other:
                    throw Bad(path + key, other, $"a list of whole numbers from {min} to {max}");
            }
        }

        public long TokenId(JsonObject root, JsonObject text, string key, long fallback) =>
            (root[key] ?? text[key]) switch
            {
                null => fallback,
                JsonValue value when value.TryGetValue<long>(out var id) && id >= 0 => id,
                var other => throw Bad(key, other, "a token id"),
            };

        public IReadOnlyList<long> TokenIds(JsonObject node, string path, string key) => node[key] switch
        {
            null => [],
            JsonValue value when value.TryGetValue<long>(out var id) && id >= 0 => [id],
            JsonArray array when array.Count <= 64 && array.All(e => e is JsonValue ev && ev.TryGetValue<long>(out var n) && n >= 0) => [.. array.Select(e => (long)e!)],
            var other => throw Bad(path + key, other, "a token id or a list of them"),
        };

        public void Activation(JsonObject node, string path)
        {
            var act = node["hidden_act"] is JsonValue value && value.TryGetValue<string>(out var s) ? s : node["hidden_act"] is null ? "silu" : null;
            if (act != "silu") throw Bad(path + "hidden_act", node["hidden_act"], "\"silu\" (the activation of every Qwen2.5-VL)");
        }

        private CheckpointException Bad(string field, JsonNode? value, string expected) =>
            new($"{fileName}: {field} is {value?.ToJsonString() ?? "null"}, expected {expected}");
    }
}
