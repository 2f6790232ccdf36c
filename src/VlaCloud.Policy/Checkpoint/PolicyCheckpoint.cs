using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;

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
        if (!File.Exists(manifestPath)) throw new CheckpointException($"{ManifestFile} is missing in {directory}");
        JsonObject files;
        try { files = JsonNode.Parse(File.ReadAllText(manifestPath))?["files"] as JsonObject ?? throw new JsonException("no 'files' object"); }
        catch (JsonException e) { throw new CheckpointException($"{ManifestFile} is not valid ({e.Message})"); }
        foreach (var name in ContentFiles)
        {
            var path = Path.Combine(directory, name);
            if (!File.Exists(path)) throw new CheckpointException($"{name} is missing in {directory}");
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

    private static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
