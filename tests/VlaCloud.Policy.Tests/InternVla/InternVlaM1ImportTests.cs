using System.Text.Json.Nodes;
using VlaCloud.Contracts;
using VlaCloud.Parity;
using VlaCloud.Policy.Checkpoint;
using VlaCloud.Policy.InternVla;

namespace VlaCloud.Policy.Tests.InternVla;

/// <summary>
/// <see cref="InternVlaM1Import"/> on a synthetic released run: a stand-in config with the release's depths (36 Qwen
/// layers, 32 vision blocks, 12 DINO and DiT blocks, the Q-Former over hidden state 36) but tiny widths, so its
/// checkpoint carries every name of <c>keys.json</c> at small shapes.
/// </summary>
public sealed class InternVlaM1ImportTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("vlacloud-m1-import-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    private (string Run, string Qwen) WriteRun(IEnumerable<(string Name, long[] Shape)> tensors, Func<string, bool>? skip = null) =>
        StandInInternVlaM1.WriteRun(root, tensors, skip);

    private static IReadOnlyList<(string Name, long[] Shape)> StandInTensors() => StandInInternVlaM1.Tensors();

    [Fact]
    public void A_run_with_every_keys_json_name_imports_with_nothing_missing_or_left_over_and_loads()
    {
        var tensors = StandInTensors();
        var keys = JsonNode.Parse(File.ReadAllText(Path.Combine(TinyInternVlaM1.FixtureFolder, "keys.json")))!["internvla_m1_state_dict"]!.AsObject();
        Assert.Equal(keys.Select(k => k.Key).Order(StringComparer.Ordinal), tensors.Select(t => t.Name).Order(StringComparer.Ordinal));

        var (run, qwen) = WriteRun(tensors);
        var output = Path.Combine(root, "m1.tar");
        var result = InternVlaM1Import.Import(run, qwen, output, embodiments: new Dictionary<string, string> { ["oxe_bridge"] = "widowx" });
        Assert.EndsWith("steps_20000_pytorch_model.pt", result.Checkpoint);
        Assert.Equal(keys.Count - 1, result.Tensors); // the tied head is the embedding
        Assert.Equal(["widowx"], result.Embodiments);

        using var policy = VlaPolicy.Load(output);
        Assert.Equal(PolicyConfig.InternVlaM1Family, policy.Config.Family);
        Assert.Equal(result.Parameters, policy.ParameterCount);
        Assert.Equal(16, policy.Config.ChunkLength);
        Assert.Equal(224, policy.Config.ImageSize);
        Assert.Equal([6], policy.Normalization["widowx"].BinaryActionDims!);
        // Values are copied: each tensor of the synthetic file is filled with its index / 1000, BF16-rounded for Qwen.
        var weights = policy.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        var index = tensors.Select((t, i) => (t.Name, i)).ToDictionary(t => t.Name, t => t.i);
        foreach (var name in new[] { "dino_pro.weight", "action_model.net.final_layer.linear.bias", "qwen_vl_interface.model.model.visual.merger.mlp.0.weight" })
            Assert.Equal(TorchSave.Value(index[name], name.StartsWith("qwen_vl_interface.", StringComparison.Ordinal)), weights[name].mean().item<float>(), 5);
    }

    [Fact]
    public void A_checkpoint_missing_a_tensor_is_refused_naming_it()
    {
        var (run, qwen) = WriteRun(StandInTensors(), skip: n => n == "layer_qformer.query_tokens");
        var error = Assert.Throws<CheckpointException>(() => InternVlaM1Import.Import(run, qwen, Path.Combine(root, "m1.tar")));
        Assert.Contains("layer_qformer.query_tokens", error.Message);
        Assert.False(File.Exists(Path.Combine(root, "m1.tar")));
    }

    [Fact]
    public void A_pt_file_holding_a_pickled_function_is_refused_before_anything_runs()
    {
        var (run, qwen) = WriteRun(StandInTensors());
        var function = Path.Combine(GoldenFixtures.RepositoryRoot, "tests", "fixtures", "torch-pickle", "function_global.pt");
        var error = Assert.Throws<CheckpointException>(() => InternVlaM1Import.Import(run, qwen, Path.Combine(root, "m1.tar"), checkpointFile: function));
        Assert.Contains("posix.system", error.Message);
        Assert.Contains("refused", error.Message);
        Assert.False(File.Exists(Path.Combine(root, "m1.tar")));
    }

    [Fact]
    public void A_bundle_imports_as_its_run_does_and_names_what_it_lacks_within_the_bundle()
    {
        var (run, qwen) = WriteRun(StandInTensors());
        var bundle = Path.Combine(root, "bundle");
        using (var tar = new MemoryStream())
        {
            Assert.Equal("steps_20000_pytorch_model.pt", CheckpointImportBundle.Write(run, qwen, tar));
            tar.Position = 0;
            Directory.CreateDirectory(bundle);
            System.Formats.Tar.TarFile.ExtractToDirectory(tar, bundle, overwriteFiles: false);
        }
        Assert.Equal(["checkpoints/steps_20000_pytorch_model.pt", "config.yaml", "dataset_statistics.json", "qwen/config.json", "qwen/tokenizer.json"],
            Directory.EnumerateFiles(bundle, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(bundle, f).Replace('\\', '/')).Order(StringComparer.Ordinal));

        var result = InternVlaM1Import.ImportBundle(bundle, Path.Combine(root, "b.tar"), embodiments: new Dictionary<string, string> { ["oxe_bridge"] = "widowx" }, name: "m1");
        Assert.Equal("checkpoints/steps_20000_pytorch_model.pt", result.Checkpoint);
        Assert.Equal("m1", result.Config.Name);
        Assert.Equal(["widowx"], result.Normalization.Keys);

        var other = Assert.Throws<CheckpointException>(() => InternVlaM1Import.ImportBundle(bundle, Path.Combine(root, "c.tar"), checkpointFile: "steps_1_pytorch_model.pt"));
        Assert.Equal("checkpoints/steps_1_pytorch_model.pt is not in the bundle", other.Message);
        File.Delete(Path.Combine(bundle, "qwen", "tokenizer.json"));
        var missing = Assert.Throws<CheckpointException>(() => InternVlaM1Import.ImportBundle(bundle, Path.Combine(root, "c.tar")));
        Assert.Equal("qwen/tokenizer.json is missing", missing.Message);
        Assert.False(File.Exists(Path.Combine(root, "c.tar")));
    }
}
