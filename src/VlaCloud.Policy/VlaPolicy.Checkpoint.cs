using TorchSharp;
using VlaCloud.Policy.Checkpoint;
using VlaCloud.Policy.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy;

public sealed partial class VlaPolicy
{
    /// <summary>Writes the checkpoint directory (weights as float32 safetensors, JSON files, manifest).</summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        var tensors = model.named_parameters().Select(p =>
        {
            using var cpu = p.parameter.detach().to(float32).cpu();
            return (p.name, cpu.shape, cpu.data<float>().ToArray());
        });
        Safetensors.Write(Path.Combine(directory, PolicyCheckpoint.WeightsFile), tensors);
        File.WriteAllText(Path.Combine(directory, PolicyCheckpoint.ConfigFile), Config.ToJson());
        File.WriteAllText(Path.Combine(directory, PolicyCheckpoint.TokenizerFile), Tokenizer.Json);
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
    /// manifest's hashes and every tensor's name and shape; throws <see cref="CheckpointException"/>
    /// naming the bad file or tensor.
    /// </summary>
    public static VlaPolicy Load(string path, string device = "cpu", string dtype = "fp32")
    {
        if (File.Exists(path))
        {
            var dir = Directory.CreateTempSubdirectory("vlacloud-ckpt-");
            try
            {
                using (var stream = File.OpenRead(path)) PolicyCheckpoint.Unpack(stream, dir.FullName);
                return LoadDirectory(dir.FullName, device, dtype);
            }
            finally { dir.Delete(recursive: true); }
        }
        if (!Directory.Exists(path)) throw new CheckpointException($"checkpoint '{path}' does not exist");
        return LoadDirectory(path, device, dtype);
    }

    private static VlaPolicy LoadDirectory(string directory, string device, string dtype)
    {
        PolicyCheckpoint.Verify(directory);
        PolicyConfig config;
        try { config = PolicyConfig.FromJson(File.ReadAllText(Path.Combine(directory, PolicyCheckpoint.ConfigFile))); config.Validate(); }
        catch (Exception e) when (e is System.Text.Json.JsonException or ArgumentException or InvalidDataException)
        { throw new CheckpointException($"{PolicyCheckpoint.ConfigFile}: {e.Message}"); }
        PolicyTokenizer tokenizer;
        try { tokenizer = PolicyTokenizer.ForConfig(config, File.ReadAllText(Path.Combine(directory, PolicyCheckpoint.TokenizerFile))); }
        catch (Exception e) when (e is System.Text.Json.JsonException or ArgumentException or InvalidDataException or NullReferenceException)
        { throw new CheckpointException($"{PolicyCheckpoint.TokenizerFile}: {e.Message}"); }
        Dictionary<string, NormalizationStats> stats;
        try { stats = NormalizationStats.FromJson(File.ReadAllText(Path.Combine(directory, PolicyCheckpoint.NormalizationFile))); }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidDataException)
        { throw new CheckpointException($"{PolicyCheckpoint.NormalizationFile}: {e.Message}"); }

        var model = new St4VlaModel(config);
        var weightsPath = Path.Combine(directory, PolicyCheckpoint.WeightsFile);
        using (var file = File.OpenRead(weightsPath))
        {
            var (entries, dataStart) = Safetensors.ReadHeader(file, PolicyCheckpoint.WeightsFile);
            var parameters = model.named_parameters().ToList();
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
        }
        var (dev, type) = (ParseDevice(device), ParseDtype(dtype));
        model.to(dev, type);
        try { return new VlaPolicy(config, tokenizer, stats, model, dev, type); }
        catch (ArgumentException e) { model.Dispose(); throw new CheckpointException($"{PolicyCheckpoint.NormalizationFile}: {e.Message}"); }
    }
}
