using TorchSharp;
using VlaCloud.Policy.Checkpoint;
using VlaCloud.Policy.InternVla;
using VlaCloud.Policy.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy;

public sealed partial class VlaPolicy
{
    /// <summary>Writes the checkpoint directory (weights as float32 safetensors, JSON files, manifest).</summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        var tensors = Module.named_parameters().Select(p =>
        {
            using var cpu = p.parameter.detach().to(float32).cpu();
            return (p.name, cpu.shape, cpu.data<float>().ToArray());
        });
        Safetensors.Write(Path.Combine(directory, PolicyCheckpoint.WeightsFile), tensors);
        File.WriteAllText(Path.Combine(directory, PolicyCheckpoint.ConfigFile), Config.ToJson());
        File.WriteAllText(Path.Combine(directory, PolicyCheckpoint.TokenizerFile), TokenizerJson);
        File.WriteAllText(Path.Combine(directory, PolicyCheckpoint.NormalizationFile), NormalizationStats.ToJson(normalization));
        PolicyCheckpoint.WriteManifest(directory);
    }

    /// <summary>Writes the single-file (tar) form of the checkpoint.</summary>
    public void SaveTar(Stream destination)
    {
        var dir = Directory.CreateTempSubdirectory("vlacloud-ckpt-");
        try
        {
            Save(dir.FullName);
            PolicyCheckpoint.Pack(dir.FullName, destination);
        }
        finally { dir.Delete(recursive: true); }
    }

    /// <summary>
    /// Loads a checkpoint directory, or a tar file made by <see cref="SaveTar"/>, onto a device
    /// (<c>cpu</c>, <c>cuda</c>, <c>cuda:1</c>) in a dtype (<c>fp32</c>, <c>bf16</c>). Verifies the
    /// manifest's hashes, the config's ranges, that the weights fit <paramref name="maxWeightBytes"/> (when given) and
    /// that the weights file holds as many values as the config's model has parameters, all before the model is built;
    /// then every tensor's name and shape. Throws <see cref="CheckpointException"/> naming the bad file, field or tensor.
    /// </summary>
    public static VlaPolicy Load(string path, string device = "cpu", string dtype = "fp32", long? maxWeightBytes = null)
    {
        if (File.Exists(path))
        {
            var dir = Directory.CreateTempSubdirectory("vlacloud-ckpt-");
            try
            {
                using (var stream = File.OpenRead(path)) PolicyCheckpoint.Unpack(stream, dir.FullName);
                return LoadDirectory(dir.FullName, device, dtype, maxWeightBytes);
            }
            finally { dir.Delete(recursive: true); }
        }
        if (!Directory.Exists(path)) throw new CheckpointException($"checkpoint '{path}' does not exist");
        return LoadDirectory(path, device, dtype, maxWeightBytes);
    }

    private static VlaPolicy LoadDirectory(string directory, string device, string dtype, long? maxWeightBytes)
    {
        PolicyCheckpoint.Verify(directory);
        var config = PolicyCheckpoint.ReadConfig(File.ReadAllText(Path.Combine(directory, PolicyCheckpoint.ConfigFile)), dtype, maxWeightBytes);
        var tokenizerJson = File.ReadAllText(Path.Combine(directory, PolicyCheckpoint.TokenizerFile));
        PolicyTokenizer? tokenizer = null;
        InternVla.Text.Qwen2Tokenizer? qwenTokenizer = null;
        try
        {
            if (config.ModelFamily == PolicyFamily.InternVlaM1) qwenTokenizer = ReadQwenTokenizer(tokenizerJson);
            else tokenizer = PolicyTokenizer.ForConfig(config, tokenizerJson);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or ArgumentException or InvalidDataException or NullReferenceException or KeyNotFoundException)
        { throw new CheckpointException($"{PolicyCheckpoint.TokenizerFile}: {e.Message}"); }
        var stats = PolicyCheckpoint.ReadNormalization(File.ReadAllText(Path.Combine(directory, PolicyCheckpoint.NormalizationFile)));

        var weightsPath = Path.Combine(directory, PolicyCheckpoint.WeightsFile);
        using var file = File.OpenRead(weightsPath);
        var (entries, dataStart) = Safetensors.ReadHeader(file, PolicyCheckpoint.WeightsFile);
        PolicyCheckpoint.CheckWeights(entries, config);
        nn.Module module;
        if (qwenTokenizer is not null)
        {
            try { module = new InternVlaM1(config.ToInternVlaM1(), qwenTokenizer); }
            catch (ArgumentException e) { throw new CheckpointException($"{PolicyCheckpoint.TokenizerFile}: {e.Message}"); }
        }
        else module = new St4VlaModel(config);
        try
        {
            var parameters = module.named_parameters().ToList();
            foreach (var (name, parameter) in parameters)
            {
                if (!entries.TryGetValue(name, out var entry))
                    throw new CheckpointException($"{PolicyCheckpoint.WeightsFile}: tensor '{name}' is missing");
                if (!entry.Shape.SequenceEqual(parameter.shape))
                    throw new CheckpointException($"{PolicyCheckpoint.WeightsFile}: tensor '{name}' has shape [{string.Join(", ", entry.Shape)}], the config needs [{string.Join(", ", parameter.shape)}]");
                using var values = tensor(Safetensors.ReadFloats(file, dataStart, entry), parameter.shape);
                using (no_grad()) parameter.copy_(values);
            }
            var extra = entries.Keys.Except(parameters.Select(p => p.name)).FirstOrDefault();
            if (extra is not null) throw new CheckpointException($"{PolicyCheckpoint.WeightsFile}: tensor '{extra}' is not part of the model");
            var (dev, type) = ParseDeviceAndDtype(device, dtype);
            module.to(dev, type);
            try { return new VlaPolicy(config, tokenizer, tokenizerJson, stats, module, dev, type); }
            catch (ArgumentException e) { throw new CheckpointException($"{PolicyCheckpoint.NormalizationFile}: {e.Message}"); }
        }
        catch
        {
            module.Dispose();
            throw;
        }
    }
}
