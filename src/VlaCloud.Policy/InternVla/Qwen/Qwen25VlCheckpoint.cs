using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using VlaCloud.Policy.Checkpoint;
using static TorchSharp.torch;

namespace VlaCloud.Policy.InternVla.Qwen;

/// <summary>
/// Hugging Face checkpoints of Qwen2.5-VL: <c>config.json</c> plus <c>model.safetensors</c>, or shards
/// <c>model-0000i-of-0000n.safetensors</c> listed in <c>model.safetensors.index.json</c>; weights in F32, F16 or BF16.
/// Hub names (<c>visual.*</c>, <c>model.*</c>, <c>lm_head.weight</c>) map onto the module's names with transformers'
/// own table. Checkpoint files are attacker input: every header is bounded by its file, and every tensor's name and
/// shape is checked against the config (on a meta-device model that allocates nothing) before any weight is
/// allocated, so the memory a checkpoint can cost is what its files hold.
/// </summary>
public static class Qwen25VlCheckpoint
{
    /// <summary>The config file.</summary>
    public const string ConfigFile = "config.json";
    /// <summary>The weights of an unsharded checkpoint.</summary>
    public const string WeightsFile = "model.safetensors";
    /// <summary>The shard index of a sharded checkpoint.</summary>
    public const string IndexFile = "model.safetensors.index.json";
    /// <summary>The largest index read (a 72B model's is under 200 KB).</summary>
    public const int MaxIndexBytes = 64 << 20;
    /// <summary>The most shard files accepted.</summary>
    public const int MaxShards = 4096;

    private const string VisualPrefix = "visual";
    private const string LanguagePrefix = "model";
    private const string ModuleVisualPrefix = "model.visual";
    private const string ModuleLanguagePrefix = "model.language_model";

    /// <summary>
    /// A hub checkpoint name → the module's name, by transformers' <c>_checkpoint_conversion_mapping</c> (first match
    /// wins): <c>^visual</c> → <c>model.visual</c>, <c>^model(?!\.(language_model|visual))</c> →
    /// <c>model.language_model</c>. Names already in the module layout pass unchanged.
    /// </summary>
    public static string ToModuleName(string hubName)
    {
        if (hubName.StartsWith(VisualPrefix, StringComparison.Ordinal)) return "model." + hubName;
        if (hubName.StartsWith(LanguagePrefix, StringComparison.Ordinal)
            && !hubName.AsSpan(LanguagePrefix.Length).StartsWith(".language_model", StringComparison.Ordinal)
            && !hubName.AsSpan(LanguagePrefix.Length).StartsWith(".visual", StringComparison.Ordinal))
            return ModuleLanguagePrefix + hubName[LanguagePrefix.Length..];
        return hubName;
    }

    /// <summary>A module name → its hub checkpoint name (what transformers' <c>save_pretrained</c> writes).</summary>
    public static string ToHubName(string moduleName)
    {
        if (moduleName.StartsWith(ModuleVisualPrefix, StringComparison.Ordinal)) return moduleName["model.".Length..];
        if (moduleName.StartsWith(ModuleLanguagePrefix, StringComparison.Ordinal)) return LanguagePrefix + moduleName[ModuleLanguagePrefix.Length..];
        return moduleName;
    }

    /// <summary>
    /// Every weight a config needs, by module name with its shape: the parameters of the model built on the meta
    /// device, so the listing is the module itself and costs no memory (a 3B config included).
    /// </summary>
    public static IReadOnlyList<(string Name, long[] Shape)> ExpectedTensors(Qwen25VlConfig config)
    {
        using var meta = Qwen25Vl.Create(config, new Device(DeviceType.META));
        return [.. meta.named_parameters().Select(p => (p.name, p.parameter.shape))];
    }

    /// <summary>
    /// Loads a checkpoint directory (config.json and the weights, sharded or not) onto <paramref name="device"/> (CPU
    /// by default). The dtype is <paramref name="dtype"/> when given; otherwise float32 on the CPU (BF16/F16 weights
    /// are upcast there) and the stored dtype elsewhere (BF16 stays BF16 on a GPU).
    /// </summary>
    /// <exception cref="CheckpointException">naming the file, the field or every missing, left-over or misshapen tensor.</exception>
    public static Qwen25Vl Load(string directory, Device? device = null, ScalarType? dtype = null)
    {
        if (!Directory.Exists(directory)) throw new CheckpointException($"checkpoint directory '{directory}' does not exist");
        var config = Qwen25VlConfig.Read(Path.Combine(directory, ConfigFile));
        var index = Path.Combine(directory, IndexFile);
        if (File.Exists(index))
        {
            var map = ReadIndex(index);
            return LoadFiles(config, [.. map.Values.Distinct().Order(StringComparer.Ordinal).Select(f => Path.Combine(directory, f))], map, device, dtype);
        }
        var single = Path.Combine(directory, WeightsFile);
        if (!File.Exists(single)) throw new CheckpointException($"{directory} has neither {WeightsFile} nor {IndexFile}");
        return LoadFiles(config, [single], null, device, dtype);
    }

    /// <summary>Loads weights from the given safetensors files (hub or module names) for <paramref name="config"/>; see <see cref="Load(string, Device?, ScalarType?)"/>.</summary>
    public static Qwen25Vl Load(Qwen25VlConfig config, IReadOnlyList<string> weightFiles, Device? device = null, ScalarType? dtype = null) =>
        LoadFiles(config, weightFiles, null, device, dtype);

    /// <summary>
    /// Writes the model as a hub checkpoint: <c>config.json</c> and the weights under hub names in
    /// <paramref name="dtype"/> (the model's by default), in one file or, beyond <paramref name="maxShardBytes"/>,
    /// in shards with an index, as transformers' <c>save_pretrained</c> lays them out.
    /// </summary>
    public static void Save(Qwen25Vl model, string directory, long maxShardBytes = 5_000_000_000, ScalarType? dtype = null)
    {
        if (maxShardBytes < 1) throw new ArgumentException("maxShardBytes must be positive");
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, ConfigFile), model.Config.ToJson());
        var type = dtype ?? model.DType;
        var elementSize = (long)Safetensors.ElementSize(SafetensorsFile.DTypeOf(type) ?? throw new ArgumentException($"{type} cannot be saved"))!;
        var shards = new List<List<(string Name, Tensor Tensor)>> { new() };
        long shardBytes = 0, total = 0;
        foreach (var (name, parameter) in model.named_parameters())
        {
            var bytes = parameter.numel() * elementSize;
            if (shards[^1].Count > 0 && shardBytes + bytes > maxShardBytes)
            {
                shards.Add([]);
                shardBytes = 0;
            }
            shards[^1].Add((ToHubName(name), parameter));
            (shardBytes, total) = (shardBytes + bytes, total + bytes);
        }
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        if (shards.Count == 1)
        {
            SafetensorsFile.Write(Path.Combine(directory, WeightsFile), shards[0], metadata, type);
            return;
        }
        var weightMap = new JsonObject();
        for (var i = 0; i < shards.Count; i++)
        {
            var file = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            SafetensorsFile.Write(Path.Combine(directory, file), shards[i], metadata, type);
            foreach (var (name, _) in shards[i].OrderBy(t => t.Name, StringComparer.Ordinal)) weightMap[name] = file;
        }
        var indexJson = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = total }, ["weight_map"] = weightMap };
        File.WriteAllText(Path.Combine(directory, IndexFile), indexJson.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    private static Qwen25Vl LoadFiles(Qwen25VlConfig config, IReadOnlyList<string> weightFiles, IReadOnlyDictionary<string, string>? weightMap, Device? device, ScalarType? dtype)
    {
        if (weightFiles.Count == 0) throw new CheckpointException("no weight files were given");
        if (weightFiles.Count > MaxShards) throw new CheckpointException($"{weightFiles.Count} weight files; at most {MaxShards} are read");
        var files = new List<SafetensorsFile>();
        try
        {
            foreach (var path in weightFiles)
            {
                if (!File.Exists(path)) throw new CheckpointException($"{Path.GetFileName(path)} is missing");
                files.Add(SafetensorsFile.Open(path));
            }
            var stored = IndexTensors(files, weightMap);
            var target = device ?? CPU;
            // Built on the meta device, the model is the listing the files are checked against, and takes the file's
            // tensors one by one: nothing is allocated before the check, nothing twice after it.
            var model = Qwen25Vl.Create(config, new Device(DeviceType.META));
            try
            {
                CheckAgainstConfig(config, [.. model.named_parameters().Select(p => (p.name, p.parameter.shape))], stored);
                var type = dtype ?? DefaultDtype(target, stored.Values);
                model.Materialize(name =>
                {
                    var (file, hubName) = stored[name];
                    using var values = file.Read(hubName);
                    return values.to(type, target, copy: true);
                });
                return model;
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
        finally
        {
            foreach (var file in files) file.Dispose();
        }
    }

    /// <summary>Every tensor of the files by module name; with an index, the index and the shards must agree exactly.</summary>
    private static Dictionary<string, (SafetensorsFile File, string HubName)> IndexTensors(List<SafetensorsFile> files, IReadOnlyDictionary<string, string>? weightMap)
    {
        var stored = new Dictionary<string, (SafetensorsFile File, string HubName)>(StringComparer.Ordinal);
        foreach (var file in files)
            foreach (var name in file.Names)
            {
                var moduleName = ToModuleName(name);
                if (stored.TryGetValue(moduleName, out var other))
                    throw new CheckpointException($"tensor '{name}' is in both {Path.GetFileName(other.File.Path)} and {Path.GetFileName(file.Path)}");
                stored[moduleName] = (file, name);
            }
        if (weightMap is null) return stored;
        foreach (var (name, shard) in weightMap)
            if (!stored.TryGetValue(ToModuleName(name), out var entry) || Path.GetFileName(entry.File.Path) != shard)
                throw new CheckpointException($"{IndexFile} puts '{name}' in {shard}, which does not hold it");
        var unlisted = stored.Values.Select(v => v.HubName).Where(n => !weightMap.ContainsKey(n)).Order(StringComparer.Ordinal).ToList();
        if (unlisted.Count > 0)
            throw new CheckpointException($"{IndexFile} does not list {Names(unlisted)}, which the shards hold");
        return stored;
    }

    /// <summary>Names, shapes and dtypes against the config, before anything is allocated; one error lists every problem.</summary>
    private static void CheckAgainstConfig(Qwen25VlConfig config, IReadOnlyList<(string Name, long[] Shape)> expected, Dictionary<string, (SafetensorsFile File, string HubName)> stored)
    {
        var expectedNames = expected.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        var problems = new List<string>();
        var missing = expected.Where(e => !stored.ContainsKey(e.Name)).Select(e => ToHubName(e.Name)).ToList();
        if (missing.Count > 0) problems.Add($"missing {Names(missing)}");
        var extra = stored.Where(s => !expectedNames.Contains(s.Key)).Select(s => s.Value.HubName).Order(StringComparer.Ordinal).ToList();
        if (extra.Count > 0)
            problems.Add($"left over (not part of this config{(config.Text.TieWordEmbeddings ? "; lm_head is tied to the embedding" : "")}) {Names(extra)}");
        var misshapen = expected.Where(e => stored.TryGetValue(e.Name, out var s) && !s.File.Shape(s.HubName).SequenceEqual(e.Shape))
            .Select(e => $"'{ToHubName(e.Name)}' is [{string.Join(", ", stored[e.Name].File.Shape(stored[e.Name].HubName))}], the config needs [{string.Join(", ", e.Shape)}]").ToList();
        if (misshapen.Count > 0) problems.Add($"wrong shape: {string.Join("; ", misshapen.Take(10))}{(misshapen.Count > 10 ? $"; and {misshapen.Count - 10} more" : "")}");
        var notFloat = stored.Where(s => expectedNames.Contains(s.Key) && s.Value.File.DType(s.Value.HubName) is not ("F32" or "F16" or "BF16"))
            .Select(s => $"'{s.Value.HubName}' ({s.Value.File.DType(s.Value.HubName)})").ToList();
        if (notFloat.Count > 0) problems.Add($"not F32/F16/BF16: {string.Join(", ", notFloat.Take(10))}");
        if (problems.Count > 0)
            throw new CheckpointException($"the Qwen2.5-VL weights do not match the config: {string.Join("; ", problems)}");
    }

    private static ScalarType DefaultDtype(Device device, IEnumerable<(SafetensorsFile File, string HubName)> stored)
    {
        if (device.type == DeviceType.CPU) return float32;
        var types = stored.Select(s => s.File.DType(s.HubName)).Distinct().ToList();
        return types.Count == 1 ? SafetensorsFile.ScalarTypeOf(types[0]) ?? float32 : float32;
    }

    /// <summary>Reads the shard index: bounded, every shard a plain file name in the same directory.</summary>
    private static Dictionary<string, string> ReadIndex(string path)
    {
        var info = new FileInfo(path);
        if (info.Length > MaxIndexBytes) throw new CheckpointException($"{IndexFile} is {info.Length} bytes, more than an index can be ({MaxIndexBytes})");
        JsonObject map;
        try { map = JsonNode.Parse(File.ReadAllText(path))?["weight_map"] as JsonObject ?? throw new JsonException("no weight_map object"); }
        catch (JsonException e) { throw new CheckpointException($"{IndexFile} is not valid ({e.Message})"); }
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in map)
        {
            var file = value is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new CheckpointException($"{IndexFile}: '{name}' maps to {value?.ToJsonString() ?? "null"}, not a file name");
            // A shard must be a file beside the index: no directories, no way out of the checkpoint.
            if (file.Length == 0 || file != Path.GetFileName(file) || file is "." or ".." || !file.EndsWith(".safetensors", StringComparison.Ordinal))
                throw new CheckpointException($"{IndexFile}: '{name}' maps to '{file}', which is not a .safetensors file beside the index");
            result[name] = file;
        }
        if (result.Count == 0) throw new CheckpointException($"{IndexFile} lists no tensors");
        return result;
    }

    private static string Names(IReadOnlyCollection<string> names) =>
        $"{names.Count} tensor{(names.Count == 1 ? "" : "s")}: {string.Join(", ", names.Take(10).Select(n => $"'{n}'"))}{(names.Count > 10 ? $", and {names.Count - 10} more" : "")}";
}
