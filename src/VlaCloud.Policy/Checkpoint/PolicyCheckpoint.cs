using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using VlaCloud.Policy.Checkpoint;

namespace VlaCloud.Policy;

/// <summary>
/// The checkpoint directory: <c>model.safetensors</c>, <c>config.json</c>, <c>tokenizer.json</c>,
/// <c>normalization.json</c> and <c>manifest.json</c> (sha256 and size of each other file); and its
/// single-file form, a tar of those five files.
/// </summary>
public static class PolicyCheckpoint
{
    /// <summary>The weights.</summary>
    public const string WeightsFile = "model.safetensors";
    /// <summary>The <see cref="PolicyConfig"/>.</summary>
    public const string ConfigFile = "config.json";
    /// <summary>The tokenizer.</summary>
    public const string TokenizerFile = "tokenizer.json";
    /// <summary>Normalisation statistics per embodiment name.</summary>
    public const string NormalizationFile = "normalization.json";
    /// <summary>sha256 and size per file.</summary>
    public const string ManifestFile = "manifest.json";

    /// <summary>The files the manifest covers, in tar order.</summary>
    public static IReadOnlyList<string> ContentFiles { get; } = [ConfigFile, TokenizerFile, NormalizationFile, WeightsFile];

    /// <summary>Writes manifest.json for the content files of a directory.</summary>
    public static void WriteManifest(string directory)
    {
        var files = new JsonObject();
        foreach (var name in ContentFiles)
        {
            var path = Path.Combine(directory, name);
            files[name] = new JsonObject { ["sha256"] = Sha256(path), ["size"] = new FileInfo(path).Length };
        }
        var manifest = new JsonObject { ["format"] = "vlacloud-checkpoint/1", ["files"] = files };
        File.WriteAllText(Path.Combine(directory, ManifestFile), manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Checks every content file against manifest.json; throws <see cref="CheckpointException"/> naming the first bad file.</summary>
    public static void Verify(string directory)
    {
        var manifestPath = Path.Combine(directory, ManifestFile);
        if (!File.Exists(manifestPath)) throw new CheckpointException($"{ManifestFile} is missing");
        JsonObject files;
        try { files = JsonNode.Parse(File.ReadAllText(manifestPath))?["files"] as JsonObject ?? throw new JsonException("no 'files' object"); }
        catch (JsonException e) { throw new CheckpointException($"{ManifestFile} is not valid ({e.Message})"); }
        foreach (var name in ContentFiles)
        {
            var path = Path.Combine(directory, name);
            if (!File.Exists(path)) throw new CheckpointException($"{name} is missing");
            if (files[name] is not JsonObject entry) throw new CheckpointException($"{ManifestFile} has no entry for {name}");
            var size = new FileInfo(path).Length;
            if ((long?)entry["size"] != size) throw new CheckpointException($"{name}: size {size} bytes differs from the manifest's {(long?)entry["size"]}");
            var hash = Sha256(path);
            if (!string.Equals((string?)entry["sha256"], hash, StringComparison.OrdinalIgnoreCase))
                throw new CheckpointException($"{name}: sha256 {hash} differs from the manifest's {(string?)entry["sha256"]} (file corrupted or replaced)");
        }
    }

    /// <summary>Packs a checkpoint directory into one tar stream (after verifying it).</summary>
    public static void Pack(string directory, Stream destination)
    {
        Verify(directory);
        using var writer = new TarWriter(destination, TarEntryFormat.Pax, leaveOpen: true);
        foreach (var name in ContentFiles.Append(ManifestFile))
            writer.WriteEntry(Path.Combine(directory, name), name);
    }

    /// <summary>
    /// Unpacks a tar made by <see cref="Pack"/> into a directory and verifies it. Only the five
    /// checkpoint files are accepted, so a tar cannot write outside the directory.
    /// </summary>
    public static void Unpack(Stream source, string directory)
    {
        Directory.CreateDirectory(directory);
        var allowed = ContentFiles.Append(ManifestFile).ToHashSet();
        using var reader = new TarReader(source, leaveOpen: true);
        while (reader.GetNextEntry() is { } entry)
        {
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || !allowed.Contains(entry.Name))
                throw new CheckpointException($"checkpoint tar holds an unexpected entry '{entry.Name}' ({entry.EntryType})");
            entry.ExtractToFile(Path.Combine(directory, entry.Name), overwrite: true);
        }
        Verify(directory);
    }

    /// <summary>Most bytes of <c>config.json</c> or <c>normalization.json</c> read while inspecting an archive.</summary>
    public const int MaxMetadataBytes = 16 << 20;

    /// <summary>
    /// Reads config.json and checks it before anything is built from it: every size in its range (an uploaded config may
    /// say <c>lm_layers: 100000</c>) and, when <paramref name="maxWeightBytes"/> is given, its parameters × the bytes of
    /// <paramref name="dtype"/> within that budget.
    /// </summary>
    /// <exception cref="CheckpointException">Naming config.json and the field.</exception>
    public static PolicyConfig ReadConfig(string json, string dtype, long? maxWeightBytes)
    {
        PolicyConfig config;
        try
        {
            config = PolicyConfig.FromJson(json);
            config.Validate();
        }
        catch (Exception e) when (e is JsonException or ArgumentException or InvalidDataException or NotSupportedException)
        {
            throw new CheckpointException($"{ConfigFile}: {e.Message}");
        }
        var parameters = config.EstimateParameters().Total;
        var bytes = parameters * VlaPolicy.BytesPerWeight(dtype);
        if (maxWeightBytes is { } max && bytes > max)
            throw new CheckpointException($"{ConfigFile}: the model has {parameters:N0} parameters, {bytes:N0} bytes in {dtype}, more than the {max:N0} bytes a device may hold for models");
        return config;
    }

    /// <summary>Reads normalization.json; throws <see cref="CheckpointException"/> naming it.</summary>
    public static Dictionary<string, NormalizationStats> ReadNormalization(string json)
    {
        try { return NormalizationStats.FromJson(json); }
        catch (Exception e) when (e is JsonException or InvalidDataException or NotSupportedException)
        { throw new CheckpointException($"{NormalizationFile}: {e.Message}"); }
    }

    /// <summary>
    /// Checks the weights' header against the config before the model is built: the tensors must hold exactly as many
    /// values as the config's model has parameters (the loader then matches every name and shape).
    /// </summary>
    internal static void CheckWeights(IReadOnlyDictionary<string, SafetensorEntry> entries, PolicyConfig config)
    {
        var stored = entries.Values.Sum(e => e.Shape.Aggregate(1L, (a, b) => a * b));
        var expected = config.EstimateParameters().Total;
        if (stored != expected)
            throw new CheckpointException($"{WeightsFile}: its tensors hold {stored:N0} values; the model of {ConfigFile} has {expected:N0} parameters");
    }

    /// <summary>
    /// Checks a checkpoint archive (the tar of <see cref="Pack"/>) as far as can be done without its weights' data: the
    /// entries, config.json (see <see cref="ReadConfig"/>), normalization.json and the safetensors header against the
    /// config. Reads the archive once, front to back, stopping after the weights' header; nothing is built or extracted.
    /// </summary>
    /// <exception cref="CheckpointException">Naming the file and what is wrong.</exception>
    public static PolicyConfig Inspect(Stream archive, string dtype, long? maxWeightBytes)
    {
        PolicyConfig? config = null;
        Dictionary<string, SafetensorEntry>? weights = null;
        var normalization = false;
        var allowed = ContentFiles.Append(ManifestFile).ToHashSet();
        try
        {
            using var reader = new TarReader(archive, leaveOpen: true);
            while ((config is null || weights is null || !normalization) && reader.GetNextEntry() is { } entry)
            {
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || !allowed.Contains(entry.Name))
                    throw new CheckpointException($"the archive holds an unexpected entry '{entry.Name}' ({entry.EntryType})");
                switch (entry.Name)
                {
                    case ConfigFile:
                        config = ReadConfig(Text(entry), dtype, maxWeightBytes);
                        break;
                    case NormalizationFile:
                        ReadNormalization(Text(entry));
                        normalization = true;
                        break;
                    case WeightsFile when entry.DataStream is { } data:
                        weights = Safetensors.ReadHeader(data, entry.Length, WeightsFile).Entries;
                        break;
                }
            }
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or ArgumentException)
        {
            throw new CheckpointException($"not a checkpoint archive (a tar of {string.Join(", ", ContentFiles)} and {ManifestFile}): {e.Message}");
        }
        if (config is null || weights is null || !normalization)
            throw new CheckpointException($"{(config is null ? ConfigFile : weights is null ? WeightsFile : NormalizationFile)} is missing from the archive");
        CheckWeights(weights, config);
        return config;

        static string Text(TarEntry entry)
        {
            if (entry.Length > MaxMetadataBytes) throw new CheckpointException($"{entry.Name} is {entry.Length:N0} bytes; at most {MaxMetadataBytes:N0} are read");
            if (entry.DataStream is null) return "";
            using var text = new StreamReader(entry.DataStream, leaveOpen: true);
            return text.ReadToEnd();
        }
    }

    private static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
