using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;

namespace VlaCloud.Policy.Tests;

public sealed class CheckpointTests : IDisposable
{
    private readonly DirectoryInfo temp = Directory.CreateTempSubdirectory("vlacloud-policy-test-");

    public void Dispose() => temp.Delete(recursive: true);

    private string Dir(string name) => Path.Combine(temp.FullName, name);

    private static float[] Actions(VlaPolicy p) =>
        p.SampleActions([TestData.Observation(0), TestData.Observation(1, TestData.Gripper)], [5, 6], steps: 3).SelectMany(c => c.Values.ToArray()).ToArray();

    [Fact]
    public void Save_then_load_gives_identical_outputs_from_a_directory_and_from_a_tar()
    {
        using var policy = TestData.Tiny(seed: 3);
        policy.Save(Dir("ckpt"));
        using (var tar = File.Create(Dir("ckpt.tar"))) policy.SaveTar(tar);

        using var fromDir = VlaPolicy.Load(Dir("ckpt"));
        using var fromTar = VlaPolicy.Load(Dir("ckpt.tar"));
        Assert.Equal(Actions(policy), Actions(fromDir));
        Assert.Equal(Actions(policy), Actions(fromTar));
        Assert.Equal(policy.Config, fromDir.Config);
        Assert.Equal(policy.Normalization.Keys.Order(), fromDir.Normalization.Keys.Order());
        Assert.Equal(policy.Normalization[TestData.Arm].BinaryActionDims, fromDir.Normalization[TestData.Arm].BinaryActionDims);
        var point = policy.GenerateSpatial([TestData.Observation(4)], SpatialKind.Box)[0];
        Assert.Equal(point.Tokens, fromTar.GenerateSpatial([TestData.Observation(4)], SpatialKind.Box)[0].Tokens);
    }

    [Fact]
    public void The_weights_file_is_standard_safetensors()
    {
        using var policy = TestData.Tiny();
        policy.Save(Dir("st"));
        var bytes = File.ReadAllBytes(Path.Combine(Dir("st"), PolicyCheckpoint.WeightsFile));
        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, (8 + headerLength) % 8);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, headerLength))!.AsObject();
        var named = policy.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(named.Keys.Order(), header.Select(kv => kv.Key).Order());
        long end = 0;
        foreach (var (name, node) in header)
        {
            Assert.Equal("F32", (string)node!["dtype"]!);
            Assert.Equal(named[name].shape, node["shape"]!.AsArray().Select(n => (long)n!));
            end = Math.Max(end, (long)node["data_offsets"]![1]!);
        }
        Assert.Equal(bytes.Length, 8 + headerLength + end);
        // First value of one tensor, read by hand, equals the parameter.
        var entry = header["lm.norm.weight"]!;
        var offset = 8 + headerLength + (long)entry["data_offsets"]![0]!;
        Assert.Equal(named["lm.norm.weight"].data<float>()[0], BitConverter.ToSingle(bytes, (int)offset));
    }

    [Fact]
    public void A_corrupted_weights_file_is_refused_naming_the_file()
    {
        using var policy = TestData.Tiny();
        policy.Save(Dir("bad"));
        var path = Path.Combine(Dir("bad"), PolicyCheckpoint.WeightsFile);
        var bytes = File.ReadAllBytes(path);
        bytes[^10] ^= 0xFF;
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<CheckpointException>(() => VlaPolicy.Load(Dir("bad")));
        Assert.Contains("model.safetensors: sha256", e.Message);
    }

    [Fact]
    public void Weights_that_do_not_add_up_to_the_config_are_refused_before_the_model_is_built()
    {
        using (var policy = TestData.Tiny()) policy.Save(Dir("mismatch"));
        // A consistent checkpoint (manifest rewritten) whose config asks for a wider action expert.
        var configPath = Path.Combine(Dir("mismatch"), PolicyCheckpoint.ConfigFile);
        File.WriteAllText(configPath, (PolicyConfig.Tiny with { ExpertWidth = 32 }).ToJson());
        PolicyCheckpoint.WriteManifest(Dir("mismatch"));
        var e = Assert.Throws<CheckpointException>(() => VlaPolicy.Load(Dir("mismatch")));
        Assert.Equal($"model.safetensors: its tensors hold {PolicyConfig.Tiny.EstimateParameters().Total:N0} values; the model of config.json has "
                     + $"{(PolicyConfig.Tiny with { ExpertWidth = 32 }).EstimateParameters().Total:N0} parameters", e.Message);
    }

    [Fact]
    public void A_tensor_of_the_right_size_but_another_shape_is_refused_naming_it()
    {
        using (var policy = TestData.Tiny())
        {
            policy.Save(Dir("transposed"));
            // The same values with one matrix stored transposed: the totals agree, the shapes do not.
            var named = policy.NamedParameters().ToList();
            var target = named.First(p => p.Parameter.shape is [var rows, var columns] && rows != columns).Name;
            VlaCloud.Policy.Checkpoint.Safetensors.Write(Path.Combine(Dir("transposed"), PolicyCheckpoint.WeightsFile), named.Select(p =>
            {
                using var cpu = p.Parameter.detach().cpu();
                long[] shape = p.Name == target ? [cpu.shape[1], cpu.shape[0]] : cpu.shape;
                return (p.Name, shape, cpu.data<float>().ToArray());
            }));
            PolicyCheckpoint.WriteManifest(Dir("transposed"));
            var e = Assert.Throws<CheckpointException>(() => VlaPolicy.Load(Dir("transposed")));
            Assert.StartsWith($"model.safetensors: tensor '{target}' has shape", e.Message);
        }
    }

    [Fact]
    public void A_missing_file_or_a_tar_with_foreign_entries_is_refused()
    {
        using (var policy = TestData.Tiny()) policy.Save(Dir("missing"));
        File.Delete(Path.Combine(Dir("missing"), PolicyCheckpoint.NormalizationFile));
        Assert.Contains("normalization.json is missing", Assert.Throws<CheckpointException>(() => VlaPolicy.Load(Dir("missing"))).Message);

        using (var tar = File.Create(Dir("evil.tar")))
        using (var writer = new System.Formats.Tar.TarWriter(tar))
        {
            File.WriteAllText(Dir("payload"), "x");
            writer.WriteEntry(Dir("payload"), "../escape.txt");
        }
        Assert.Contains("unexpected entry '../escape.txt'", Assert.Throws<CheckpointException>(() => VlaPolicy.Load(Dir("evil.tar"))).Message);
        Assert.False(File.Exists(Path.Combine(temp.FullName, "escape.txt")));
    }

    [Fact]
    public void A_checkpoint_loads_in_bfloat16_and_still_gives_finite_actions()
    {
        using (var policy = TestData.Tiny()) policy.Save(Dir("bf16"));
        using var half = VlaPolicy.Load(Dir("bf16"), dtype: "bf16");
        Assert.Equal(TorchSharp.torch.ScalarType.BFloat16, half.DType);
        Assert.All(Actions(half), v => Assert.True(float.IsFinite(v)));
    }
}
