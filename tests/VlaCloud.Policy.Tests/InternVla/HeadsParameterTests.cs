using System.Text.Json.Nodes;
using TorchSharp;
using VlaCloud.Parity;
using VlaCloud.Policy.InternVla.Heads;

namespace VlaCloud.Policy.Tests.InternVla;

public sealed class HeadsParameterTests
{
    private static List<string> Listing(IEnumerable<ParameterShape> parameters) => [.. parameters.Select(p => p.ToString())];

    private static List<string> Listing(torch.nn.Module module) =>
        [.. module.named_parameters().Select(p => new ParameterShape(p.name, p.parameter.shape).ToString())];

    private const string Plain = "without LayerScale or condition dropout";
    private const string Point = "with the point token";
    private const string PlainPoint = "with the point token, without condition dropout";

    public static TheoryData<string> SmallConfigs() => ["fixtures", Plain, Point, PlainPoint];

    [Theory]
    [MemberData(nameof(SmallConfigs))]
    public void The_expected_parameter_listing_of_a_config_equals_the_built_heads_named_parameters_in_order(string variant)
    {
        var config = TinyHeads.Config;
        if (variant is Plain or PlainPoint)
            config = config with { Dino = config.Dino with { InitValues = null }, ActionModel = config.ActionModel with { ClassDropoutProb = 0 } };
        if (variant is Point or PlainPoint) config = config with { ActionModel = config.ActionModel with { PointToken = true } };
        using var heads = new InternVlaHeads(config);
        Assert.Equal(Listing(config.ExpectedParameters()), Listing(heads));
        var dropout = variant is "fixtures" or Point;
        Assert.Equal(dropout, Listing(heads).Any(n => n.Contains(".ls1.gamma")));
        Assert.Equal(dropout, Listing(heads).Any(n => n.Contains("z_embedder.uncondition")));
        // The point token's tensors are new names beside the released ones, whose shapes it leaves alone.
        Assert.Equal(variant is Point or PlainPoint, Listing(heads).Any(n => n.Contains("net.point_position [1, ")));
        Assert.Equal(variant is Point, Listing(heads).Any(n => n.Contains("z_embedder.point_uncondition [1, ")));
        if (variant is Point)
        {
            using var released = new InternVlaHeads(TinyHeads.Config);
            Assert.Empty(Listing(released).Except(Listing(heads)));
        }
    }

    [Fact]
    public void Each_fixture_module_has_exactly_the_tensors_of_its_upstream_weight_file()
    {
        using var dino = new DinoBackbone("dino_encoder", TinyHeads.Dino);
        using var qformer = new LayerwiseQFormer("layer_qformer", TinyHeads.QFormer);
        using var action = new ActionModel("action_model", TinyHeads.Dit);
        foreach (var (module, file) in new (torch.nn.Module, string)[] { (dino, "dino_tiny.safetensors"), (qformer, "qformer_tiny.safetensors"), (action, "dit_tiny.safetensors") })
        {
            using var weights = Checkpoint.SafetensorsFile.Open(GoldenFixtures.File(file));
            Assert.Equal(weights.Names.Select(n => $"{n} [{string.Join(", ", weights.Shape(n))}]").Order(StringComparer.Ordinal), Listing(module).Order(StringComparer.Ordinal));
        }
    }

    [Fact]
    public void The_released_config_lists_exactly_the_heads_names_shapes_and_order_of_keys_json_without_building_them()
    {
        var keys = HeadsFixtures.Keys(GoldenFixtures.InternVlaM1);
        var config = InternVlaHeadsConfig.Released with { VlmHiddenSize = HeadsFixtures.KeysVlmHiddenSize(GoldenFixtures.InternVlaM1) };
        Assert.Equal(keys.Select(k => k.Parameter.ToString()), Listing(config.ExpectedParameters()));
        Assert.All(keys, k => Assert.Equal("float32", k.Dtype));
    }

    [Fact]
    public void The_full_size_heads_built_for_real_have_exactly_the_names_shapes_and_dtypes_of_keys_json()
    {
        using var heads = new InternVlaHeads(InternVlaHeadsConfig.Released);
        var keys = HeadsFixtures.Keys(GoldenFixtures.InternVlaM1);
        Assert.Equal(keys.Select(k => k.Parameter.ToString()), Listing(heads));
        Assert.All(heads.parameters(), p => Assert.Equal(torch.ScalarType.Float32, p.dtype));
        // The sizes the references quote: DiT-B ≈ 86 M, ViT-S/14 ≈ 22 M.
        var action = heads.ActionModel.parameters().Sum(p => p.numel());
        var dino = heads.Dino.parameters().Sum(p => p.numel());
        Assert.InRange(action, 85_000_000, 87_000_000);
        Assert.InRange(dino, 21_000_000, 23_000_000);
    }

    [Fact]
    public void The_upstream_training_config_reads_into_the_released_heads()
    {
        // The sections of InternVLA/config/training/internvla_cotrain_oxe.yaml (@949223b) that size the heads.
        var yaml = JsonNode.Parse("""
            {
              "framework": {
                "qwenvl": { "base_vlm": "./playground/Pretrained_models/Qwen2.5-VL-3B-Instruct", "vl_hidden_dim": 2048 },
                "dino": { "dino_backbone": "dinov2_vits14" },
                "layer_qformer": { "qformer_end_layer": 37, "qformer_start_layer": 36, "num_query_tokens": 64,
                                   "input_dim": 2048, "ouptput_dim": 768, "grad_scale": 0.5 },
                "action_model": { "action_model_type": "DiT-B", "action_hidden_dim": 768, "action_dim": 7, "use_ema": false,
                                  "future_action_window_size": 15, "past_action_window_size": 0, "repeated_diffusion_steps": 8 }
              },
              "trainer": { "repeated_diffusion_steps": 4 }
            }
            """)!;
        var config = InternVlaHeadsConfig.FromUpstream(yaml);
        Assert.Equal(InternVlaHeadsConfig.Released, config);
        Assert.Equal(16, config.ActionModel.ChunkLength);
        // M1 reads trainer.repeated_diffusion_steps, not the action_model section's.
        Assert.Equal(4, config.ActionModel.RepeatedDiffusionSteps);
        Assert.False(config.QFormer.GradientDecay);
    }

    [Theory]
    [InlineData("past_action_window_size", "2", "past_action_window_size")]
    [InlineData("action_model_type", "\"DiT-XL\"", "DiT-XL")]
    [InlineData("action_dim", "\"seven\"", "action_dim")]
    public void An_upstream_config_the_heads_cannot_be_built_from_is_refused_naming_the_field(string key, string value, string message)
    {
        var json = JsonNode.Parse($$"""
            { "framework": {
                "layer_qformer": { "qformer_end_layer": 37, "qformer_start_layer": 36, "num_query_tokens": 64, "input_dim": 2048, "ouptput_dim": 768 },
                "action_model": { "action_model_type": "DiT-B", "action_dim": 7, "future_action_window_size": 15, "past_action_window_size": 0 } } }
            """)!;
        json["framework"]!["action_model"]![key] = JsonNode.Parse(value);
        var error = Assert.Throws<ArgumentException>(() => InternVlaHeadsConfig.FromUpstream(json));
        Assert.Contains(message, error.Message);
    }
}
