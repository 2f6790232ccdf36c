using System.Text.Json;
using System.Text.Json.Nodes;
using VlaCloud.Policy.InternVla.Qwen;

namespace VlaCloud.Policy.Tests.InternVla;

public sealed class QwenConfigTests
{
    private static JsonObject FixtureJson() => (JsonObject)JsonNode.Parse(File.ReadAllText(QwenFixture.ConfigPath))!;

    /// <summary>Records holding lists compare by reference; their JSON compares by value.</summary>
    private static string Json(object record) => JsonSerializer.Serialize(record);

    private static JsonObject Keys3BConfig() => (JsonObject)JsonNode.Parse(File.ReadAllText(QwenFixture.KeysPath))!["qwen_config"]!;

    [Fact]
    public void The_fixture_config_is_read_from_its_text_and_vision_sections()
    {
        var json = FixtureJson();
        var (text, vision) = ((JsonObject)json["text_config"]!, (JsonObject)json["vision_config"]!);
        var config = Qwen25VlConfig.FromJson(json.ToJsonString());
        Assert.Equal((int)text["hidden_size"]!, config.Text.HiddenSize);
        Assert.Equal((int)text["num_hidden_layers"]!, config.Text.NumHiddenLayers);
        Assert.Equal((int)text["num_attention_heads"]!, config.Text.NumAttentionHeads);
        Assert.Equal((int)text["num_key_value_heads"]!, config.Text.NumKeyValueHeads);
        Assert.Equal((int)text["vocab_size"]!, config.Text.VocabSize);
        Assert.Equal((double)text["rope_theta"]!, config.Text.RopeTheta);
        Assert.Equal(text["rope_scaling"]!["mrope_section"]!.AsArray().Select(n => (int)n!), config.Text.MropeSection);
        Assert.Equal((bool)text["tie_word_embeddings"]!, config.Text.TieWordEmbeddings);
        Assert.Equal((int)vision["depth"]!, config.Vision.Depth);
        Assert.Equal((int)vision["window_size"]!, config.Vision.WindowSize);
        Assert.Equal(vision["fullatt_block_indexes"]!.AsArray().Select(n => (int)n!), config.Vision.FullAttentionBlockIndexes);
        Assert.Equal((long)json["image_token_id"]!, config.ImageTokenId);
        Assert.Equal((long)json["vision_start_token_id"]!, config.VisionStartTokenId);
        Assert.Equal([(long)text["eos_token_id"]!], config.EosTokenIds);
    }

    [Fact]
    public void A_flat_hub_config_reads_the_decoder_from_the_top_level_and_a_nested_one_ignores_it()
    {
        var nested = Qwen25VlConfig.FromJson(FixtureJson().ToJsonString());

        // The published hub files have no text_config: transformers builds it from the top-level keys.
        var flat = FixtureJson();
        var text = (JsonObject)flat["text_config"]!;
        flat.Remove("text_config");
        foreach (var (key, value) in text.ToList()) flat[key] = value?.DeepClone();
        Assert.Equal(Json(nested.Text), Json(Qwen25VlConfig.FromJson(flat.ToJsonString()).Text));

        // With a text_config, top-level decoder keys are not read.
        var shadowed = FixtureJson();
        shadowed["hidden_size"] = nested.Text.HiddenSize * 2;
        Assert.Equal(nested.Text.HiddenSize, Qwen25VlConfig.FromJson(shadowed.ToJsonString()).Text.HiddenSize);
    }

    [Fact]
    public void The_3B_config_of_keys_json_gives_its_sizes()
    {
        var json = Keys3BConfig();
        var config = Qwen25VlConfig.FromJson(json.ToJsonString());
        Assert.Equal((int)json["text_config"]!["num_hidden_layers"]!, config.Text.NumHiddenLayers);
        Assert.Equal((int)json["text_config"]!["hidden_size"]!, config.Text.HiddenSize);
        Assert.Equal((int)json["vision_config"]!["out_hidden_size"]!, config.Vision.OutHiddenSize);
        // text_config says image_token_id null; the VL config's top-level id is the one transformers uses.
        Assert.Equal((long)json["image_token_id"]!, config.ImageTokenId);
        Assert.True(config.Text.NumKeyValueHeads < config.Text.NumAttentionHeads, "the 3B decoder uses grouped-query attention");
    }

    [Fact]
    public void A_changed_config_is_written_back_in_transformers_format_and_reads_the_same()
    {
        var config = QwenFixture.Config();
        var changed = config with
        {
            Text = config.Text with { TieWordEmbeddings = !config.Text.TieWordEmbeddings, NumHiddenLayers = config.Text.NumHiddenLayers + 1 },
            Vision = config.Vision with { FullAttentionBlockIndexes = [0] },
        };
        var reread = Qwen25VlConfig.FromJson(changed.ToJson());
        Assert.Equal(Json(changed.Text), Json(reread.Text));
        Assert.Equal(Json(changed.Vision), Json(reread.Vision));
        // Fields the record does not model (generation defaults, …) survive.
        Assert.Equal((string)FixtureJson()["model_type"]!, (string)JsonNode.Parse(changed.ToJson())!["model_type"]!);
    }

    [Theory]
    [InlineData("text_config.hidden_size", "1000000000000", "hidden_size")]
    [InlineData("text_config.num_key_value_heads", "1000", "num_key_value_heads")]
    [InlineData("text_config.rope_scaling.mrope_section", "[1, 1, 1]", "mrope_section")]
    [InlineData("text_config.rope_scaling.rope_type", "\"yarn\"", "yarn")]
    [InlineData("text_config.use_sliding_window", "true", "use_sliding_window")]
    [InlineData("text_config.hidden_act", "\"gelu\"", "hidden_act")]
    [InlineData("vision_config.num_heads", "-2", "num_heads")]
    [InlineData("vision_config.fullatt_block_indexes", "[1000]", "fullatt_block_indexes")]
    [InlineData("vision_config.out_hidden_size", "7", "out_hidden_size")]
    public void A_config_that_does_not_fit_together_is_refused_naming_the_field(string path, string value, string named)
    {
        var json = FixtureJson();
        var parts = path.Split('.');
        var node = parts[..^1].Aggregate((JsonNode)json, (n, key) => n[key]!);
        node[parts[^1]] = JsonNode.Parse(value);
        var error = Assert.Throws<CheckpointException>(() => Qwen25VlConfig.FromJson(json.ToJsonString()));
        Assert.Contains(named, error.Message);
    }
}
