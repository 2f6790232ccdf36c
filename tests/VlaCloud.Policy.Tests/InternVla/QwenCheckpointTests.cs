using System.Text.Json.Nodes;
using VlaCloud.Policy.Checkpoint;
using VlaCloud.Policy.InternVla.Qwen;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Tests.InternVla;

public sealed class QwenCheckpointTests
{
    /// <summary>Every tensor of the fixture's hub-layout weights, read in its stored dtype.</summary>
    private static List<(string Name, Tensor Tensor)> FixtureTensors()
    {
        using var file = SafetensorsFile.Open(QwenFixture.WeightsPath);
        return [.. file.Names.Select(n => (n, file.Read(n)))];
    }

    private static Dictionary<string, long[]> ShapesOf(JsonObject listing) =>
        listing.ToDictionary(p => p.Key, p => (p.Value is JsonObject o && o["shape"] is JsonArray s ? s : p.Value!.AsArray()).Select(n => (long)n!).ToArray());

    /// <summary>A checkpoint folder with the fixture config and the given tensors as model.safetensors.</summary>
    private static ScratchFolder Checkpoint(IEnumerable<(string Name, Tensor Tensor)> tensors, Qwen25VlConfig? config = null)
    {
        var folder = QwenFixture.Scratch();
        File.WriteAllText(folder.File(Qwen25VlCheckpoint.ConfigFile), (config ?? QwenFixture.Config()).ToJson());
        SafetensorsFile.Write(folder.File(Qwen25VlCheckpoint.WeightsFile), tensors);
        return folder;
    }

    [Fact]
    public void Hub_names_map_onto_transformers_module_names_and_back()
    {
        var moduleNames = ShapesOf((JsonObject)JsonNode.Parse(File.ReadAllText(GoldenFixtures.File("qwen25vl_tiny.module_state_dict_names.json")))!);
        using var file = SafetensorsFile.Open(QwenFixture.WeightsPath);
        foreach (var hub in file.Names)
        {
            var module = Qwen25VlCheckpoint.ToModuleName(hub);
            Assert.True(moduleNames.ContainsKey(module), $"{hub} maps to {module}, which transformers' module does not have");
            Assert.Equal(hub, Qwen25VlCheckpoint.ToHubName(module));
        }
        // Names already in the module layout are left alone, so both layouts load.
        Assert.All(moduleNames.Keys, m => Assert.Equal(m, Qwen25VlCheckpoint.ToModuleName(m)));
    }

    [Fact]
    public void The_module_parameters_are_the_names_and_shapes_of_transformers_in_memory_state_dict()
    {
        var expected = ShapesOf((JsonObject)JsonNode.Parse(File.ReadAllText(GoldenFixtures.File("qwen25vl_tiny.module_state_dict_names.json")))!);
        var config = QwenFixture.Config();
        using var model = Qwen25Vl.Create(config);
        var actual = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        // transformers' state dict lists a tied lm_head.weight as well (the same tensor as the embedding).
        if (config.Text.TieWordEmbeddings) actual["lm_head.weight"] = expected["lm_head.weight"];
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        Assert.All(expected, e => Assert.Equal(e.Value, actual[e.Key]));
        // The listing the loader checks against is this module's, built on the meta device.
        Assert.Equal(model.named_parameters().Select(p => p.name), Qwen25VlCheckpoint.ExpectedTensors(config).Select(e => e.Name));
    }

    [Fact]
    public void The_3B_hub_checkpoint_names_of_keys_json_map_onto_the_module_with_nothing_missing_or_left_over()
    {
        var keys = (JsonObject)JsonNode.Parse(File.ReadAllText(QwenFixture.KeysPath))!;
        var config = Qwen25VlConfig.FromJson(keys["qwen_config"]!.ToJsonString());
        // On the meta device: a 3B model's shapes without its 15 GB.
        var expected = Qwen25VlCheckpoint.ExpectedTensors(config).ToDictionary(e => Qwen25VlCheckpoint.ToHubName(e.Name), e => e.Shape);
        var hub = ShapesOf((JsonObject)keys["qwen2_5_vl_3b_hub_checkpoint_names"]!);
        Assert.Empty(hub.Keys.Except(expected.Keys));
        Assert.Empty(expected.Keys.Except(hub.Keys));
        Assert.All(hub, h => Assert.Equal(h.Value, expected[h.Key]));

        // InternVLA-M1 holds the same module under qwen_vl_interface.model (its state dict lists the tied lm_head too).
        const string prefix = "qwen_vl_interface.model.";
        var internVla = ShapesOf((JsonObject)keys["internvla_m1_state_dict"]!).Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(p => p.Key[prefix.Length..], p => p.Value);
        var modules = expected.ToDictionary(e => Qwen25VlCheckpoint.ToModuleName(e.Key), e => e.Value);
        Assert.Equal(modules.Keys.Append("lm_head.weight").Order(), internVla.Keys.Order());
        Assert.All(modules, m => Assert.Equal(m.Value, internVla[m.Key]));
    }

    [Fact]
    public void The_fixture_weights_load_through_the_hub_loader_from_a_file_or_a_checkpoint_folder()
    {
        var tensors = FixtureTensors();
        using var direct = QwenFixture.Load();
        using var folder = Checkpoint(tensors);
        using var fromFolder = Qwen25VlCheckpoint.Load(folder.Path);
        foreach (var model in new[] { direct, fromFolder })
        {
            var parameters = model.named_parameters().ToDictionary(p => Qwen25VlCheckpoint.ToHubName(p.name), p => p.parameter);
            Assert.Equal(tensors.Select(t => t.Name).Order(), parameters.Keys.Order());
            Assert.All(tensors, t => Assert.True(QwenFixture.Same(parameters[t.Name], t.Tensor), $"{t.Name} differs from the file"));
        }
    }

    [Fact]
    public void A_checkpoint_saved_as_two_shards_with_an_index_loads_to_the_same_weights_and_outputs()
    {
        using var model = QwenFixture.Load();
        using var folder = QwenFixture.Scratch();
        var bytes = model.parameters().Sum(p => p.numel() * 4);
        Qwen25VlCheckpoint.Save(model, folder.Path, maxShardBytes: bytes / 2 + bytes / 4);
        Assert.True(File.Exists(folder.File(Qwen25VlCheckpoint.IndexFile)));
        Assert.Equal(["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"],
            Directory.GetFiles(folder.Path, "model-*.safetensors").Select(f => Path.GetFileName(f)).Order());
        var index = JsonNode.Parse(File.ReadAllText(folder.File(Qwen25VlCheckpoint.IndexFile)))!;
        Assert.Equal(bytes, (long)index["metadata"]!["total_size"]!);

        using var reloaded = Qwen25VlCheckpoint.Load(folder.Path);
        var original = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.All(reloaded.named_parameters(), p => Assert.True(QwenFixture.Same(original[p.name], p.parameter), $"{p.name} changed"));
        using var io = QwenFixture.Io();
        using var a = model.Forward(QwenFixture.Inputs(io), new QwenForwardOptions { Logits = QwenLogits.All });
        using var b = reloaded.Forward(QwenFixture.Inputs(io), new QwenForwardOptions { Logits = QwenLogits.All });
        Assert.True(QwenFixture.Same(a.Logits!, b.Logits!));
    }

    [Fact]
    public void Bf16_weights_are_upcast_on_the_cpu_by_default_and_stay_bf16_when_asked()
    {
        using var model = QwenFixture.Load();
        using var folder = QwenFixture.Scratch();
        Qwen25VlCheckpoint.Save(model, folder.Path, dtype: bfloat16);
        using (var file = SafetensorsFile.Open(folder.File(Qwen25VlCheckpoint.WeightsFile)))
            Assert.All(file.Names, n => Assert.Equal("BF16", file.DType(n)));

        using var upcast = Qwen25VlCheckpoint.Load(folder.Path);
        Assert.Equal(ScalarType.Float32, upcast.DType);
        var original = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.All(upcast.named_parameters(), p => Assert.True(QwenFixture.Same(original[p.name].to(bfloat16).to(float32), p.parameter), $"{p.name} is not its bf16 value"));

        using var half = Qwen25VlCheckpoint.Load(folder.Path, CPU, bfloat16);
        Assert.All(half.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        using var io = QwenFixture.Io();
        using var output = half.Forward(QwenFixture.Inputs(io), new QwenForwardOptions { Logits = QwenLogits.All });
        Assert.Equal(ScalarType.BFloat16, output.Logits!.dtype);
        // bf16 keeps 8 bits of mantissa: the logits stay within a few percent of the float32 fixture's spread.
        using var expected = io.Read("logits");
        var error = (output.Logits.to(float32) - expected).abs().max().item<float>();
        Assert.True(error < 0.05 * expected.abs().max().item<float>(), $"bf16 logits are {error} off");
    }

    [Theory]
    [InlineData("missing")]
    [InlineData("left over")]
    [InlineData("wrong shape")]
    public void A_missing_left_over_or_misshapen_tensor_is_refused_naming_it(string problem)
    {
        var tensors = FixtureTensors();
        var victim = tensors.Single(t => t.Name.EndsWith("layers.0.self_attn.k_proj.weight", StringComparison.Ordinal));
        var named = victim.Name;
        tensors = problem switch
        {
            "missing" => [.. tensors.Where(t => t.Name != victim.Name)],
            "left over" => [.. tensors, (named = "model.layers.0.self_attn.rotary_emb.inv_freq", zeros(4))],
            _ => [.. tensors.Where(t => t.Name != victim.Name), (victim.Name, zeros(victim.Tensor.shape[0] + 1, victim.Tensor.shape[1]))],
        };
        using var folder = Checkpoint(tensors);
        var error = Assert.Throws<CheckpointException>(() => Qwen25VlCheckpoint.Load(folder.Path));
        Assert.Contains(problem, error.Message);
        Assert.Contains($"'{named}'", error.Message);
    }

    [Fact]
    public void An_untied_lm_head_loads_and_gives_the_logits()
    {
        var config = QwenFixture.Config();
        var untied = config with { Text = config.Text with { TieWordEmbeddings = false } };
        using var generator = new TorchSharp.torch.Generator(7);
        var head = randn([config.Text.VocabSize, config.Text.HiddenSize], generator: generator);
        var tensors = FixtureTensors().Where(t => t.Name != "lm_head.weight").Append(("lm_head.weight", head)).ToList();
        using var folder = Checkpoint(tensors, untied);
        using var model = Qwen25VlCheckpoint.Load(folder.Path);
        Assert.False(model.Config.Text.TieWordEmbeddings);
        using var io = QwenFixture.Io();
        using var output = model.Forward(QwenFixture.Inputs(io), new QwenForwardOptions { Logits = QwenLogits.All });
        Assert.True(output.Logits!.allclose(output.LastHiddenState.matmul(head.t()), rtol: 1e-5, atol: 1e-5));

        // The same file for the tied config has a head too many, and the error says why.
        using var tiedFolder = Checkpoint(tensors, untied with { Text = untied.Text with { TieWordEmbeddings = true } });
        var error = Assert.Throws<CheckpointException>(() => Qwen25VlCheckpoint.Load(tiedFolder.Path));
        Assert.Contains("'lm_head.weight'", error.Message);
        Assert.Contains("tied", error.Message);
    }

    [Fact]
    public void A_config_far_larger_than_its_weights_is_refused_before_anything_is_allocated()
    {
        // Real weights for this config would be terabytes: the check has to come before allocation for the test to end.
        var config = QwenFixture.Config();
        var huge = config with { Text = config.Text with { HiddenSize = 1 << 16, IntermediateSize = 1 << 18, NumAttentionHeads = 1 << 10, NumKeyValueHeads = 1 << 10, MropeSection = [8, 12, 12], NumHiddenLayers = 64 }, Vision = config.Vision with { OutHiddenSize = 1 << 16 } };
        using var folder = Checkpoint(FixtureTensors(), huge);
        var error = Assert.Throws<CheckpointException>(() => Qwen25VlCheckpoint.Load(folder.Path));
        Assert.Contains("wrong shape", error.Message);
        Assert.Contains("missing", error.Message);
    }

    [Theory]
    [InlineData("../model.safetensors")]
    [InlineData("/etc/passwd")]
    [InlineData("weights.bin")]
    public void A_shard_index_naming_a_file_outside_the_checkpoint_is_refused(string shard)
    {
        using var folder = Checkpoint(FixtureTensors());
        File.WriteAllText(folder.File(Qwen25VlCheckpoint.IndexFile), new JsonObject { ["weight_map"] = new JsonObject { ["model.norm.weight"] = shard } }.ToJsonString());
        var error = Assert.Throws<CheckpointException>(() => Qwen25VlCheckpoint.Load(folder.Path));
        Assert.Contains(shard, error.Message);
    }

    [Fact]
    public void A_shard_index_that_disagrees_with_its_shards_is_refused()
    {
        using var model = QwenFixture.Load();
        using var folder = QwenFixture.Scratch();
        var bytes = model.parameters().Sum(p => p.numel() * 4);
        Qwen25VlCheckpoint.Save(model, folder.Path, maxShardBytes: bytes / 2 + bytes / 4);
        var index = JsonNode.Parse(File.ReadAllText(folder.File(Qwen25VlCheckpoint.IndexFile)))!;
        var map = (JsonObject)index["weight_map"]!;
        map.Remove("model.norm.weight");
        File.WriteAllText(folder.File(Qwen25VlCheckpoint.IndexFile), index.ToJsonString());
        var error = Assert.Throws<CheckpointException>(() => Qwen25VlCheckpoint.Load(folder.Path));
        Assert.Contains("'model.norm.weight'", error.Message);
    }
}
