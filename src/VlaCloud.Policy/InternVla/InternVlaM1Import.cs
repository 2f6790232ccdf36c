using System.Globalization;
using System.Text.Json.Nodes;
using VlaCloud.Contracts;
using VlaCloud.Policy.Checkpoint;
using VlaCloud.Policy.InternVla.Heads;
using VlaCloud.Policy.InternVla.Qwen;
using YamlDotNet.RepresentationModel;
using static TorchSharp.torch;

namespace VlaCloud.Policy.InternVla;

/// <summary>What an import wrote.</summary>
/// <param name="Checkpoint">The <c>.pt</c> file read.</param>
/// <param name="Config">The policy config written.</param>
/// <param name="Tensors">Tensors copied.</param>
/// <param name="Parameters">Values copied.</param>
/// <param name="Embodiments">Embodiment names of the statistics (after renaming).</param>
/// <param name="Normalization">The statistics written to <c>normalization.json</c>, by embodiment name.</param>
public sealed record InternVlaM1ImportResult(string Checkpoint, PolicyConfig Config, int Tensors, long Parameters, IReadOnlyList<string> Embodiments,
    IReadOnlyDictionary<string, NormalizationStats> Normalization);

/// <summary>
/// Converts a released InternVLA-M1 run folder to VlaCloud's checkpoint artifact (<c>vlacloud-checkpoint/1</c>): the
/// weights of <c>checkpoints/steps_N_pytorch_model.pt</c> (read by <see cref="TorchArchive"/>, which refuses anything but
/// tensors and plain containers) copied one tensor at a time under their own names into <c>model.safetensors</c> (F32),
/// <c>config.yaml</c>'s <c>framework</c> section and Qwen2.5-VL's <c>config.json</c> into <c>config.json</c>, Qwen's
/// <c>tokenizer.json</c> as the tokenizer, and <c>dataset_statistics.json</c> (per embodiment tag: q01/q99, mean/std, and
/// the mask whose false entries are the binary gripper) into <c>normalization.json</c>.
/// </summary>
public static class InternVlaM1Import
{
    /// <summary>Largest <c>config.yaml</c>, <c>dataset_statistics.json</c> or Qwen <c>config.json</c> read.</summary>
    public const long MaxMetadataBytes = 16L << 20;

    /// <summary>Largest Qwen <c>tokenizer.json</c> read (the real one is about 7 MB).</summary>
    public const long MaxTokenizerBytes = 64L << 20;

    /// <summary>
    /// Imports <paramref name="runDirectory"/> (a released layout) with Qwen's files from <paramref name="qwenDirectory"/>
    /// (<c>config.json</c>, <c>tokenizer.json</c>) into the tar <paramref name="output"/>.
    /// </summary>
    /// <param name="runDirectory">Holds <c>config.yaml</c>, <c>dataset_statistics.json</c> and <c>checkpoints/steps_N_pytorch_model.pt</c>.</param>
    /// <param name="qwenDirectory">The Qwen2.5-VL folder the run was built on.</param>
    /// <param name="output">Where the checkpoint tar is written.</param>
    /// <param name="checkpointFile">A <c>.pt</c> to read instead of the run's highest step.</param>
    /// <param name="embodiments">Renames of <c>dataset_statistics.json</c>'s tags to VlaCloud embodiment names (others keep their tag).</param>
    /// <param name="name">The config's name (default: the run folder's name).</param>
    /// <exception cref="CheckpointException">A file is missing or malformed, or the weights do not match the config (names every missing, left-over or misshapen tensor).</exception>
    public static InternVlaM1ImportResult Import(string runDirectory, string qwenDirectory, string output, string? checkpointFile = null,
        IReadOnlyDictionary<string, string>? embodiments = null, string? name = null)
    {
        var pt = checkpointFile ?? LatestCheckpoint(runDirectory);
        var yaml = ReadYaml(Path.Combine(runDirectory, "config.yaml"));
        var framework = yaml["framework"] as JsonObject ?? throw new CheckpointException("config.yaml has no framework section");
        framework = (JsonObject)framework.DeepClone();
        if (yaml["trainer"]?["repeated_diffusion_steps"] is { } repeats && framework["action_model"] is JsonObject action)
            action["repeated_diffusion_steps"] = repeats.DeepClone();
        var vlaData = yaml["datasets"]?["vla_data"];
        var imageSize = ImageSize(vlaData?["image_size"]);
        var qwen = JsonNode.Parse(ReadText(Path.Combine(qwenDirectory, "config.json"), MaxMetadataBytes)) as JsonObject
            ?? throw new CheckpointException("the Qwen folder's config.json is not a JSON object");
        var tokenizerJson = ReadText(Path.Combine(qwenDirectory, "tokenizer.json"), MaxTokenizerBytes);

        PolicyConfig config;
        InternVlaM1Config m1;
        try
        {
            config = PolicyConfig.ForInternVlaM1(qwen, framework, imageSize,
                name ?? (Path.GetFileName(Path.GetFullPath(runDirectory).TrimEnd(Path.DirectorySeparatorChar)) is { Length: > 0 } n ? n : "internvla-m1"));
            if (vlaData?["CoT_prompt"] is JsonValue prompt && prompt.TryGetValue<string>(out var cot)) config = config with { CotPrompt = cot };
            config.Validate();
            m1 = config.ToInternVlaM1();
            InternVlaM1.CheckTokenizer(m1, VlaPolicy.ReadQwenTokenizer(tokenizerJson));
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or System.Text.Json.JsonException)
        { throw new CheckpointException($"config: {e.Message}"); }
        var stats = ReadStatistics(Path.Combine(runDirectory, "dataset_statistics.json"), embodiments);
        foreach (var (tag, s) in stats)
        {
            try { s.Validate(config, tag); }
            catch (ArgumentException e) { throw new CheckpointException($"dataset_statistics.json: {e.Message}"); }
        }

        var expected = ExpectedTensors(m1);
        using var archive = TorchArchive.Open(pt);
        var ptName = Path.GetFileName(pt);
        // A tied lm_head is in the state dict (it is the embedding's tensor) but not a parameter of its own.
        var tied = m1.Qwen.Text.TieWordEmbeddings ? "qwen_vl_interface.model.lm_head.weight" : null;
        var missing = expected.Where(e => !archive.Tensors.ContainsKey(e.Name)).Select(e => e.Name).ToList();
        var extra = archive.Tensors.Keys.Where(k => k != tied && !expected.Any(e => e.Name == k)).ToList();
        if (missing.Count > 0 || extra.Count > 0)
            throw new CheckpointException($"{ptName} does not match the config: {missing.Count} missing ({string.Join(", ", missing.Take(5))}), {extra.Count} left over ({string.Join(", ", extra.Take(5))})");
        foreach (var e in expected)
        {
            var shape = archive.Tensors[e.Name].Shape;
            if (!shape.SequenceEqual(e.Shape))
                throw new CheckpointException($"{ptName}: tensor '{e.Name}' is [{string.Join(", ", shape)}], the config needs [{string.Join(", ", e.Shape)}]");
        }

        var dir = Directory.CreateTempSubdirectory("vlacloud-import-");
        try
        {
            var entries = expected.OrderBy(e => e.Name, StringComparer.Ordinal).ToList();
            Safetensors.WriteFile(Path.Combine(dir.FullName, PolicyCheckpoint.WeightsFile),
                [.. entries.Select(e => (e.Name, "F32", e.Shape, 4 * e.Count))], null, (i, file) =>
                {
                    // One tensor in memory at a time, converted from its stored dtype (BF16 Qwen, F32 heads).
                    using var scope = NewDisposeScope();
                    using var stored = archive.Read(entries[i].Name);
                    file.Write(stored.to(float32).contiguous().bytes);
                });
            File.WriteAllText(Path.Combine(dir.FullName, PolicyCheckpoint.ConfigFile), config.ToJson());
            File.WriteAllText(Path.Combine(dir.FullName, PolicyCheckpoint.TokenizerFile), tokenizerJson);
            File.WriteAllText(Path.Combine(dir.FullName, PolicyCheckpoint.NormalizationFile), NormalizationStats.ToJson(stats));
            PolicyCheckpoint.WriteManifest(dir.FullName);
            using (var tar = File.Create(output)) PolicyCheckpoint.Pack(dir.FullName, tar);
        }
        finally { dir.Delete(recursive: true); }
        return new InternVlaM1ImportResult(pt, config, expected.Count, expected.Sum(e => e.Count), [.. stats.Keys], stats);
    }

    /// <summary>
    /// Imports an extracted bundle (see <see cref="CheckpointImportBundle.Write"/>): the run at <paramref name="bundleDirectory"/> (or in
    /// its only folder, when the tar wrapped it in one) with Qwen's files in its <c>qwen</c> folder. Error messages name
    /// files relative to the bundle.
    /// </summary>
    /// <param name="bundleDirectory">The extracted bundle.</param>
    /// <param name="output">Where the checkpoint tar is written.</param>
    /// <param name="checkpointFile">A file name in <c>checkpoints/</c> to read instead of the highest step.</param>
    /// <param name="embodiments">Renames of the statistics' tags.</param>
    /// <param name="name">The config's name (a bundle's folder name means nothing).</param>
    /// <exception cref="CheckpointException">As <see cref="Import"/>, or the bundle lacks a file.</exception>
    public static InternVlaM1ImportResult ImportBundle(string bundleDirectory, string output, string? checkpointFile = null,
        IReadOnlyDictionary<string, string>? embodiments = null, string name = "internvla-m1")
    {
        var root = Path.GetFullPath(bundleDirectory).TrimEnd(Path.DirectorySeparatorChar);
        if (!File.Exists(Path.Combine(root, CheckpointImportBundle.RunFiles[0])) && Directory.GetFiles(root).Length == 0 && Directory.GetDirectories(root) is [var only]
            && File.Exists(Path.Combine(only, CheckpointImportBundle.RunFiles[0])))
            root = only;
        try
        {
            string? pt = null;
            if (checkpointFile is not null)
            {
                if (!CheckpointImportBundle.IsCheckpointFileName(checkpointFile)) throw new CheckpointException($"checkpoint file '{checkpointFile}' is not a plain .pt file name");
                pt = Path.Combine(root, CheckpointImportBundle.CheckpointsFolder, checkpointFile);
                if (!File.Exists(pt)) throw new CheckpointException($"{CheckpointImportBundle.CheckpointsFolder}/{checkpointFile} is not in the bundle");
            }
            var qwen = Path.Combine(root, CheckpointImportBundle.QwenFolder);
            if (!Directory.Exists(qwen)) throw new CheckpointException($"the bundle has no {CheckpointImportBundle.QwenFolder}/ folder (Qwen2.5-VL's config.json and tokenizer.json)");
            return ImportResultRelative(Import(root, qwen, output, pt, embodiments, name), root);
        }
        catch (CheckpointException e) when (e.Message.Contains(root, StringComparison.Ordinal))
        {
            // The server's folders mean nothing to a client: paths are named within the bundle.
            throw new CheckpointException(e.Message.Replace(root + Path.DirectorySeparatorChar, "", StringComparison.Ordinal).Replace(root, "the bundle", StringComparison.Ordinal));
        }
    }

    private static InternVlaM1ImportResult ImportResultRelative(InternVlaM1ImportResult result, string root) =>
        result with { Checkpoint = Path.GetRelativePath(root, result.Checkpoint).Replace(Path.DirectorySeparatorChar, '/') };

    /// <summary>The tensors of the model a config describes, by state-dict name, without building it.</summary>
    public static IReadOnlyList<ParameterShape> ExpectedTensors(InternVlaM1Config config)
    {
        var list = Qwen25VlCheckpoint.ExpectedTensors(config.Qwen).Select(t => new ParameterShape($"qwen_vl_interface.model.{t.Name}", t.Shape)).ToList();
        list.AddRange(config.Heads.ExpectedParameters());
        if (config.UseState) list.AddRange(ParameterShape.Linear("state_projector", 2L * config.StateDim, config.Heads.ActionModel.TokenSize));
        if (config.PointGuidance) list.AddRange(ParameterShape.Linear("point_projector", PolicyConfig.PointGuideFeatures, config.Heads.ActionModel.TokenSize));
        return list;
    }

    /// <summary>The run's <c>checkpoints/steps_N_pytorch_model.pt</c> with the highest N.</summary>
    /// <exception cref="CheckpointException">There is none.</exception>
    public static string LatestCheckpoint(string runDirectory)
    {
        try { return CheckpointImportBundle.LatestCheckpoint(runDirectory); }
        catch (InvalidDataException e) { throw new CheckpointException(e.Message); }
    }

    /// <summary>
    /// <c>dataset_statistics.json</c>: per tag, <c>action</c> (and optionally <c>state</c>) with <c>mean</c>, <c>std</c>,
    /// <c>q01</c>, <c>q99</c> and a <c>mask</c> whose false dimensions are not normalised (the gripper, served binary).
    /// </summary>
    public static Dictionary<string, NormalizationStats> ReadStatistics(string path, IReadOnlyDictionary<string, string>? renames = null)
    {
        var root = JsonNode.Parse(ReadText(path, MaxMetadataBytes)) as JsonObject ?? throw new CheckpointException("dataset_statistics.json is not a JSON object");
        var result = new Dictionary<string, NormalizationStats>(StringComparer.Ordinal);
        foreach (var (tag, node) in root)
        {
            if (node?["action"] is not JsonObject action) throw new CheckpointException($"dataset_statistics.json: '{tag}' has no action statistics");
            try
            {
                var mask = action["mask"] is JsonArray m ? m.Select(v => v!.GetValue<bool>()).ToArray() : null;
                var binary = mask is null ? null : Enumerable.Range(0, mask.Length).Where(i => !mask[i]).ToArray();
                var state = node["state"] is JsonObject s ? Feature(s) : null;
                var name = renames is not null && renames.TryGetValue(tag, out var renamed) ? renamed : tag;
                result[name] = new NormalizationStats(Feature(action), state, NormalizationMode.Q99, binary is { Length: > 0 } ? binary : null);
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException)
            { throw new CheckpointException($"dataset_statistics.json: '{tag}' is malformed ({e.Message})"); }
        }
        if (result.Count == 0) throw new CheckpointException("dataset_statistics.json has no embodiment");
        return result;

        static float[] Floats(JsonObject o, string key) =>
            (o[key] as JsonArray ?? throw new CheckpointException($"dataset_statistics.json: statistics without '{key}'")).Select(v => (float)v!.GetValue<double>()).ToArray();
        static FeatureStats Feature(JsonObject o) => new(Floats(o, "mean"), Floats(o, "std"), Floats(o, "q01"), Floats(o, "q99"));
    }

    private static int ImageSize(JsonNode? node) => node switch
    {
        null => 224,
        JsonValue v when v.TryGetValue<int>(out var side) => side,
        JsonArray { Count: 2 } a when a[0] is JsonValue w && w.TryGetValue<int>(out var x) && a[1] is JsonValue h && h.TryGetValue<int>(out var y) && x == y => x,
        _ => throw new CheckpointException($"config.yaml: datasets.vla_data.image_size {node.ToJsonString()} is not a square size"),
    };

    private static string ReadText(string path, long maxBytes)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new CheckpointException($"{path} is missing");
        if (info.Length > maxBytes) throw new CheckpointException($"{info.Name} is {info.Length:N0} bytes; at most {maxBytes:N0} are read");
        return File.ReadAllText(path);
    }

    /// <summary>config.yaml as JSON: mappings, sequences and scalars (numbers and booleans typed as YAML's core schema reads them).</summary>
    private static JsonObject ReadYaml(string path)
    {
        var stream = new YamlStream();
        try
        {
            using var reader = new StringReader(ReadText(path, MaxMetadataBytes));
            stream.Load(reader);
        }
        catch (YamlDotNet.Core.YamlException e) { throw new CheckpointException($"config.yaml is not valid YAML ({e.Message})"); }
        if (stream.Documents.Count != 1 || ToJson(stream.Documents[0].RootNode, 0) is not JsonObject root)
            throw new CheckpointException("config.yaml must hold one mapping");
        return root;
    }

    private static JsonNode? ToJson(YamlNode node, int depth)
    {
        if (depth > 32) throw new CheckpointException("config.yaml is nested too deeply");
        switch (node)
        {
            case YamlMappingNode map:
                var o = new JsonObject();
                foreach (var (k, v) in map.Children) o[((YamlScalarNode)k).Value ?? ""] = ToJson(v, depth + 1);
                return o;
            case YamlSequenceNode seq:
                return new JsonArray([.. seq.Children.Select(c => ToJson(c, depth + 1))]);
            case YamlScalarNode scalar:
                var text = scalar.Value;
                if (text is null || scalar.Style is not (YamlDotNet.Core.ScalarStyle.Plain or YamlDotNet.Core.ScalarStyle.Any)) return text;
                if (text is "null" or "~" or "") return null;
                if (text is "true" or "True") return true;
                if (text is "false" or "False") return false;
                // Integers as int where they fit: the config readers ask sizes as int.
                if (int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i)) return i;
                if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)) return l;
                if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) return d;
                return text;
            default:
                throw new CheckpointException("config.yaml holds an alias or an unknown node");
        }
    }
}
