using System.Text.Json.Nodes;
using VlaCloud.Policy.Checkpoint;

namespace VlaCloud.Policy.Tests;

/// <summary>
/// The golden fixture folders themselves. Config B (<c>tests/fixtures/internvla-m1-b</c>) is there to show that the model
/// code reads every size from the configs. So it must hold every file a parity group reads and differ from config A in
/// its sizes. In both folders, every tensor must have the shape the folder's configs name, so that sizes read from
/// the configs are the right ones.
/// </summary>
public sealed class FixtureFolderTests
{
    private const string ConfigA = "internvla-m1";
    private const string ConfigB = "internvla-m1-b";

    public static TheoryData<string> Folders() => [ConfigA, ConfigB];

    [Fact]
    public void Config_B_has_every_file_of_config_A_but_the_full_model_key_list()
    {
        // keys.json lists the full-size model's names, which are the same for every variant.
        var missing = FileNames(ConfigA).Except(["keys.json", "README.md"]).Except(FileNames(ConfigB)).ToList();
        Assert.True(missing.Count == 0, $"config B lacks {string.Join(", ", missing)}");
    }

    [Fact]
    public void Config_B_differs_from_config_A_in_every_size_but_the_language_models_KV_head_count_and_head_width()
    {
        // B keeps 2 KV heads and head_dim 16 (hidden 96 over 6 heads), but its GQA group is 3 where A's is 2.
        var a = Sizes(GoldenFixtures.RepositoryFolder(ConfigA));
        var b = Sizes(GoldenFixtures.RepositoryFolder(ConfigB));
        Assert.Equal(a.Keys, b.Keys);
        var repeated = a.Keys.Where(k => a[k] == b[k]).Select(k => $"{k} = {a[k]}").ToList();
        Assert.True(repeated.Count == 0, $"config B repeats config A's {string.Join("; ", repeated)}");
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Every_Qwen_tensor_has_the_shape_the_folders_config_names(string name)
    {
        var folder = GoldenFixtures.RepositoryFolder(name);
        var config = Config(folder, "qwen25vl_tiny.config.json");
        var text = config["text_config"]!;
        var vision = config["vision_config"]!;
        long vocab = Int(text, "vocab_size"), hidden = Int(text, "hidden_size"), layers = Int(text, "num_hidden_layers");
        var headDim = hidden / Int(text, "num_attention_heads");
        long visionHidden = Int(vision, "hidden_size"), visionDepth = Int(vision, "depth"), merge = Int(vision, "spatial_merge_size");
        var patchWidth = 3 * Int(vision, "temporal_patch_size") * Int(vision, "patch_size") * Int(vision, "patch_size");
        Assert.Equal(headDim, 2 * text["rope_scaling"]!["mrope_section"]!.AsArray().Sum(n => n!.GetValue<long>()));

        using (var weights = SafetensorsFile.Open(Path.Combine(folder, "qwen25vl_tiny.safetensors")))
        {
            Assert.Equal([vocab, hidden], weights.Shape("model.embed_tokens.weight"));
            // Hub checkpoints of tied models carry no lm_head.weight; an untied head is stored.
            Assert.Equal(!text["tie_word_embeddings"]!.GetValue<bool>(), weights.Contains("lm_head.weight"));
            if (weights.Contains("lm_head.weight")) Assert.Equal([vocab, hidden], weights.Shape("lm_head.weight"));
            Assert.Equal([Int(text, "num_key_value_heads") * headDim, hidden], weights.Shape($"model.layers.{layers - 1}.self_attn.k_proj.weight"));
            Assert.False(weights.Contains($"model.layers.{layers}.self_attn.k_proj.weight"));
            Assert.Equal([3 * visionHidden, visionHidden], weights.Shape($"visual.blocks.{visionDepth - 1}.attn.qkv.weight"));
            Assert.False(weights.Contains($"visual.blocks.{visionDepth}.attn.qkv.weight"));
        }

        using var io = SafetensorsFile.Open(Path.Combine(folder, "qwen25vl_tiny.io.safetensors"));
        var ids = io.Shape("input_ids"); // (B, T)
        Assert.Equal([ids[0], ids[1], vocab], io.Shape("logits"));
        for (var i = 0; i <= layers; i++) Assert.Equal([ids[0], ids[1], hidden], io.Shape($"hidden_states.{i}"));
        Assert.False(io.Contains($"hidden_states.{layers + 1}"));
        using var grid = io.Read("image_grid_thw"); // (images, 3) = t, h, w in patches
        var patches = grid.prod(1).sum().item<long>();
        Assert.Equal([patches, patchWidth], io.Shape("pixel_values"));
        Assert.Equal([patches / (merge * merge), hidden], io.Shape("vision_embeds"));
        using var windows = io.Read("vision_cu_window_seqlens");
        Assert.Equal(patches, windows[-1].item<long>());
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Every_head_tensor_has_the_shape_the_folders_configs_name(string name)
    {
        var folder = GoldenFixtures.RepositoryFolder(name);

        var qformerConfig = Config(folder, "qformer_tiny.config.json");
        var bridge = qformerConfig["framework"]!["layer_qformer"]!;
        var bridgeLayers = Int(bridge, "qformer_end_layer") - Int(bridge, "qformer_start_layer");
        long queries = Int(bridge, "num_query_tokens"), width = Int(bridge, "ouptput_dim"); // sic, upstream's key
        Assert.Equal(0, width % Int(qformerConfig, "num_heads"));
        using (var io = SafetensorsFile.Open(Path.Combine(folder, "qformer_tiny.io.safetensors")))
        {
            var input = io.Shape("hidden_states_list.0"); // (B, L, D_in)
            Assert.Equal(Int(bridge, "input_dim"), input[2]);
            Assert.True(io.Contains($"hidden_states_list.{bridgeLayers - 1}") && !io.Contains($"hidden_states_list.{bridgeLayers}"));
            Assert.Equal([input[0], queries, width], io.Shape("output"));
        }
        using (var weights = SafetensorsFile.Open(Path.Combine(folder, "qformer_tiny.safetensors")))
        {
            Assert.Equal([queries, width], weights.Shape("query_tokens"));
            Assert.Equal([3 * width, width], weights.Shape($"layers.{bridgeLayers - 1}.cross_attn.in_proj_weight"));
            Assert.False(weights.Contains($"layers.{bridgeLayers}.cross_attn.in_proj_weight"));
        }

        var ditConfig = Config(folder, "dit_tiny.config.json");
        var actionModel = ditConfig["ActionModel"]!;
        var dit = ditConfig["DiT-Tiny"]!;
        long chunk = Int(actionModel, "future_action_window_size") + 1, actionDim = Int(actionModel, "in_channels");
        long token = Int(dit, "token_size"), depth = Int(dit, "depth"), conditions = Int(dit, "n_conditon_token"); // sic
        Assert.Equal(0, token % Int(dit, "num_heads"));
        using (var io = SafetensorsFile.Open(Path.Combine(folder, "dit_tiny.io.safetensors")))
        {
            var batch = io.Shape("condition")[0];
            Assert.Equal([batch, conditions, token], io.Shape("condition"));
            Assert.Equal([batch, chunk, actionDim], io.Shape("ddim.samples_cfg"));
            Assert.Equal([Int(ditConfig["ddim"]!, "num_ddim_steps")], io.Shape("ddim.timestep_map"));
        }
        using (var weights = SafetensorsFile.Open(Path.Combine(folder, "dit_tiny.safetensors")))
        {
            Assert.Equal([conditions + chunk, token], weights.Shape("net.positional_embedding"));
            Assert.Equal([3 * token, token], weights.Shape($"net.blocks.{depth - 1}.attn.qkv.weight"));
            Assert.False(weights.Contains($"net.blocks.{depth}.attn.qkv.weight"));
        }

        var dino = Config(folder, "dino_tiny.config.json")["DinoVisionTransformer"]!;
        long dim = Int(dino, "embed_dim"), patch = Int(dino, "patch_size"), grid = Int(dino, "img_size") / patch;
        using (var io = SafetensorsFile.Open(Path.Combine(folder, "dino_tiny.io.safetensors")))
        {
            foreach (var (input, output) in new[] { ("prepared_input", "x_norm_patchtokens"), ("raw_input_small", "x_norm_patchtokens_small") })
            {
                var image = io.Shape(input); // (views, 3, H, W)
                Assert.Equal([image[0], image[2] / patch * (image[3] / patch), dim], io.Shape(output));
            }
        }
        using (var weights = SafetensorsFile.Open(Path.Combine(folder, "dino_tiny.safetensors")))
        {
            Assert.Equal([1, grid * grid + 1, dim], weights.Shape("body.pos_embed"));
            Assert.False(weights.Contains($"body.blocks.{Int(dino, "depth")}.attn.qkv.weight"));
        }
    }

    /// <summary>Every size a variant sets, as JSON text, read from the folder's configs and input shapes.</summary>
    private static Dictionary<string, string> Sizes(string folder)
    {
        var qwen = Config(folder, "qwen25vl_tiny.config.json");
        var text = qwen["text_config"]!;
        var vision = qwen["vision_config"]!;
        var processor = Config(folder, "qwen25vl_tiny.preprocessor_config.json");
        var bridge = Config(folder, "qformer_tiny.config.json");
        var dit = Config(folder, "dit_tiny.config.json");
        var dino = Config(folder, "dino_tiny.config.json")["DinoVisionTransformer"]!;
        using var qwenIo = SafetensorsFile.Open(Path.Combine(folder, "qwen25vl_tiny.io.safetensors"));
        using var dinoIo = SafetensorsFile.Open(Path.Combine(folder, "dino_tiny.io.safetensors"));
        var sizes = new Dictionary<string, string>
        {
            ["gqa group"] = (Int(text, "num_attention_heads") / Int(text, "num_key_value_heads")).ToString(),
            ["image0"] = string.Join("x", qwenIo.Shape("image0_uint8_hwc")),
            ["image1"] = string.Join("x", qwenIo.Shape("image1_uint8_hwc")),
            ["dino view"] = string.Join("x", dinoIo.Shape("view0_uint8_hwc")),
            ["dino small input"] = string.Join("x", dinoIo.Shape("raw_input_small")),
        };
        void Add(string prefix, JsonNode node, params string[] keys)
        {
            foreach (var key in keys) sizes[$"{prefix}.{key}"] = node[key]!.ToJsonString();
        }
        Add("text", text, "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "tie_word_embeddings");
        sizes["text.mrope_section"] = text["rope_scaling"]!["mrope_section"]!.ToJsonString();
        Add("vision", vision, "depth", "hidden_size", "num_heads", "intermediate_size", "window_size", "fullatt_block_indexes");
        Add("processor", processor, "min_pixels", "max_pixels");
        Add("qformer", bridge["framework"]!["layer_qformer"]!, "qformer_start_layer", "qformer_end_layer", "num_query_tokens", "ouptput_dim");
        Add("qformer", bridge, "num_heads");
        Add("dit", dit["ActionModel"]!, "in_channels", "future_action_window_size");
        Add("dit", dit["DiT-Tiny"]!, "depth", "token_size", "num_heads");
        Add("ddim", dit["ddim"]!, "num_ddim_steps", "cfg_scale");
        Add("dino", dino, "embed_dim", "depth", "num_heads", "img_size");
        return sizes;
    }

    private static JsonNode Config(string folder, string file) => JsonNode.Parse(File.ReadAllText(Path.Combine(folder, file)))!;

    private static long Int(JsonNode node, string key) => node[key]!.GetValue<long>();

    private static IEnumerable<string> FileNames(string name) =>
        Directory.GetFiles(GoldenFixtures.RepositoryFolder(name)).Select(f => Path.GetFileName(f)!);
}
