using System.Formats.Tar;
using System.Text.Json.Nodes;
using VlaCloud.Policy.Checkpoint;

namespace VlaCloud.Policy.Tests;

/// <summary>
/// Checkpoints are uploads (issue 18, item 6): their config.json and safetensors header are checked before anything
/// is sized from them, at load and when an archive is inspected for registration.
/// </summary>
public sealed class HostileCheckpointTests : IDisposable
{
    private readonly DirectoryInfo temp = Directory.CreateTempSubdirectory("vlacloud-hostile-ckpt-");

    public void Dispose() => temp.Delete(recursive: true);

    private string Dir(string name) => Path.Combine(temp.FullName, name);

    /// <summary>A saved tiny checkpoint whose config.json is edited by <paramref name="edit"/> (manifest rewritten, so only the edit is wrong).</summary>
    private string Saved(string name, Action<JsonObject>? edit = null)
    {
        using (var policy = TestData.Tiny()) policy.Save(Dir(name));
        if (edit is not null)
        {
            var path = Path.Combine(Dir(name), PolicyCheckpoint.ConfigFile);
            var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            edit(config);
            File.WriteAllText(path, config.ToJsonString());
            PolicyCheckpoint.WriteManifest(Dir(name));
        }
        return Dir(name);
    }

    private static MemoryStream Tar(string directory)
    {
        var tar = new MemoryStream();
        PolicyCheckpoint.Pack(directory, tar);
        tar.Position = 0;
        return tar;
    }

    [Theory]
    [InlineData("lm_layers", 100_000, "lm_layers must be between 1 and 256, not 100000")]
    [InlineData("vision_width", -4, "vision_width must be between 1 and 8192, not -4")]
    [InlineData("text_vocab_size", 2_000_000_000, "text_vocab_size must be between 1 and 1000000, not 2000000000")]
    public void A_config_out_of_range_is_refused_naming_the_field_before_the_model_is_built(string field, long value, string message)
    {
        var directory = Saved(field, c => c[field] = value);

        Assert.Equal($"config.json: {message}", Assert.Throws<CheckpointException>(() => VlaPolicy.Load(directory)).Message);
        Assert.Equal($"config.json: {message}", Assert.Throws<CheckpointException>(() => PolicyCheckpoint.Inspect(Tar(directory), "fp32", null)).Message);
    }

    [Fact]
    public void A_model_past_the_memory_budget_is_refused_from_its_config_before_it_is_built()
    {
        var directory = Saved("budget");
        var parameters = PolicyConfig.Tiny.EstimateParameters().Total;

        var e = Assert.Throws<CheckpointException>(() => VlaPolicy.Load(directory, maxWeightBytes: parameters * 4 - 1));
        Assert.Equal($"config.json: the model has {parameters:N0} parameters, {parameters * 4:N0} bytes in fp32, more than the {parameters * 4 - 1:N0} bytes a device may hold for models", e.Message);
        // bf16 halves the weights: the same budget then holds the model.
        using var half = VlaPolicy.Load(directory, dtype: "bf16", maxWeightBytes: parameters * 4 - 1);
        Assert.Equal(parameters, half.ParameterCount);
        Assert.Throws<CheckpointException>(() => PolicyCheckpoint.Inspect(Tar(directory), "fp32", parameters * 4 - 1));
    }

    [Fact]
    public void Inspecting_an_archive_reads_its_config_and_weights_header_and_refuses_what_is_not_a_checkpoint()
    {
        var directory = Saved("good");
        Assert.Equal(PolicyConfig.Tiny, PolicyCheckpoint.Inspect(Tar(directory), "fp32", 1L << 30));

        var random = new MemoryStream(Enumerable.Range(0, 4096).Select(i => (byte)(i * 31)).ToArray());
        Assert.StartsWith("not a checkpoint archive", Assert.Throws<CheckpointException>(() => PolicyCheckpoint.Inspect(random, "fp32", null)).Message);

        // A tar with only a config: the weights' header is what is missing.
        var partial = new MemoryStream();
        using (var writer = new TarWriter(partial, leaveOpen: true))
            writer.WriteEntry(Path.Combine(directory, PolicyCheckpoint.ConfigFile), PolicyCheckpoint.ConfigFile);
        partial.Position = 0;
        Assert.Equal("model.safetensors is missing from the archive", Assert.Throws<CheckpointException>(() => PolicyCheckpoint.Inspect(partial, "fp32", null)).Message);
    }

    [Fact]
    public void A_safetensors_header_declared_past_16_mb_is_refused_before_it_is_read()
    {
        var path = Dir("big-header.safetensors");
        using (var file = File.Create(path))
        {
            Span<byte> length = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)Safetensors.MaxHeaderBytes + 8);
            file.Write(length);
            file.SetLength(64L << 20);
        }
        var e = Assert.Throws<CheckpointException>(() => SafetensorsFile.Open(path));
        Assert.Contains("header length 16777224 is not valid", e.Message);
    }
}
