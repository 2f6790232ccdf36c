using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Parquet.Serialization;
using VlaCloud.Datasets;

namespace VlaCloud.Sim;

/// <summary>
/// Writes recorded episodes as a LeRobot v2.1 dataset, one episode at a time (frames are not kept in
/// memory): <c>data/chunk-XXX/episode_XXXXXX.parquet</c> with images stored inline as PNG structs
/// <c>{bytes, path}</c>, and <c>meta/</c> with <c>info.json</c>, <c>episodes.jsonl</c>,
/// <c>tasks.jsonl</c>, <c>episodes_stats.jsonl</c>, <c>modality.json</c>, plus two VlaCloud files:
/// <c>meta/spatial_annotations.jsonl</c> (one line per frame: <c>episode_index</c>, <c>frame_index</c>,
/// <c>index</c>, <c>camera</c>, <c>image_size</c> [w, h], <c>instruction</c>, <c>target</c> and
/// <c>destination</c> as <c>{name, point [x,y], box [x1,y1,x2,y2]}</c>, <c>trajectory</c> [[x,y],…],
/// all in pixels of the main camera) and <c>meta/sim_splits.json</c> (the split protocol).
/// </summary>
public sealed class LeRobotWriter
{
    /// <summary>Episodes per chunk folder, as LeRobot's default.</summary>
    public const int ChunksSize = 1000;

    /// <summary>Path template of episode files (LeRobot v2.1).</summary>
    public const string DataPath = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet";

    private readonly string _root;
    private readonly SimEmbodiment _embodiment;
    private readonly Dictionary<string, int> _tasks = new(StringComparer.Ordinal);
    private readonly List<string> _episodeLines = [];
    private readonly List<string> _statsLines = [];
    private readonly StreamWriter _annotations;
    private int _frames;

    /// <summary>Starts a dataset in <paramref name="root"/> (created; must be empty or absent).</summary>
    public LeRobotWriter(string root, SimEmbodiment embodiment)
    {
        if (Directory.Exists(root) && Directory.EnumerateFileSystemEntries(root).Any())
            throw new IOException($"'{root}' is not empty");
        if (embodiment.Cameras.Select(c => c.Name).Order().SequenceEqual(["main", "wrist"]) is false)
            throw new ArgumentException("the writer stores the simulator's two cameras, main and wrist", nameof(embodiment));
        _root = root;
        _embodiment = embodiment;
        Directory.CreateDirectory(Path.Combine(root, "meta"));
        _annotations = new StreamWriter(Path.Combine(root, "meta", "spatial_annotations.jsonl"));
    }

    /// <summary>Episodes written so far.</summary>
    public int Episodes => _episodeLines.Count;

    /// <summary>Frames written so far.</summary>
    public int Frames => _frames;

    /// <summary>Appends one episode.</summary>
    public async Task AddEpisodeAsync(RecordedEpisode episode, CancellationToken cancellationToken = default)
    {
        if (episode.Frames.Count == 0) throw new ArgumentException("an episode has at least one frame", nameof(episode));
        var episodeIndex = _episodeLines.Count;
        var instruction = episode.Scene.Task.Instruction;
        if (!_tasks.TryGetValue(instruction, out var taskIndex)) _tasks[instruction] = taskIndex = _tasks.Count;
        var main = _embodiment.Cameras.First(c => c.Name == "main");
        var wrist = _embodiment.Cameras.First(c => c.Name == "wrist");
        var fps = _embodiment.ControlHz;

        var rows = new FrameRow[episode.Frames.Count];
        for (var t = 0; t < rows.Length; t++)
        {
            var f = episode.Frames[t];
            rows[t] = new FrameRow
            {
                ImageMain = new ImageCell { Bytes = ImageCodec.EncodePng(f.Images["main"], main.Width, main.Height), Path = $"frame_{t:06d}.png" },
                ImageWrist = new ImageCell { Bytes = ImageCodec.EncodePng(f.Images["wrist"], wrist.Width, wrist.Height), Path = $"frame_{t:06d}.png" },
                State = [.. f.State],
                Action = [.. f.Action],
                Timestamp = (float)(t / fps),
                FrameIndex = t,
                EpisodeIndex = episodeIndex,
                Index = _frames + t,
                TaskIndex = taskIndex,
            };
        }

        var path = Path.Combine(_root, EpisodePath(episodeIndex));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await using (var file = File.Create(path))
            await ParquetSerializer.SerializeAsync(rows, file, cancellationToken: cancellationToken);

        for (var t = 0; t < rows.Length; t++)
        {
            var labels = episode.Labels[t];
            await _annotations.WriteLineAsync(JsonSerializer.Serialize(new
            {
                episode_index = episodeIndex,
                frame_index = t,
                index = _frames + t,
                camera = main.FeatureKey,
                image_size = new[] { main.Width, main.Height },
                instruction,
                target = labels.Target,
                destination = labels.Destination,
                trajectory = labels.Trajectory,
            }, LineOptions).AsMemory(), cancellationToken);
        }

        _episodeLines.Add(JsonSerializer.Serialize(new
        {
            episode_index = episodeIndex,
            tasks = new[] { instruction },
            length = rows.Length,
            // Extra fields LeRobot ignores: where the episode came from, for evaluation protocols.
            split = episode.Scene.Split,
            seed = episode.Scene.Seed,
            task_kind = episode.Scene.Task.Kind == TaskKind.PickPlace ? "pick_place" : "push",
            target = episode.Scene.TargetKind.Phrase,
            destination = episode.Scene.TargetDestination.Phrase,
            paraphrased = episode.Scene.Task.Paraphrased,
            success = episode.Success,
        }, LineOptions));
        _statsLines.Add(new JsonObject
        {
            [LeRobotFeatures.EpisodeIndex] = episodeIndex,
            ["stats"] = EpisodeStats(episode, rows, main, wrist),
        }.ToJsonString());
        _frames += rows.Length;
    }

    /// <summary>Writes the metadata files; call once after the last episode.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken = default)
    {
        await _annotations.DisposeAsync();
        var meta = Path.Combine(_root, "meta");
        await File.WriteAllLinesAsync(Path.Combine(meta, "episodes.jsonl"), _episodeLines, cancellationToken);
        await File.WriteAllLinesAsync(Path.Combine(meta, "episodes_stats.jsonl"), _statsLines, cancellationToken);
        await File.WriteAllLinesAsync(Path.Combine(meta, "tasks.jsonl"),
            _tasks.OrderBy(t => t.Value).Select(t => JsonSerializer.Serialize(new { task_index = t.Value, task = t.Key }, LineOptions)), cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(meta, "info.json"), Info().ToJsonString(Indented), cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(meta, "modality.json"), Modality().ToJsonString(Indented), cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(meta, "sim_splits.json"), SimSplits.ToJson(), cancellationToken);
    }

    /// <summary>Relative path of an episode's parquet file.</summary>
    public static string EpisodePath(int episodeIndex) =>
        $"data/chunk-{episodeIndex / ChunksSize:000}/episode_{episodeIndex:000000}.parquet";

    private JsonObject Info()
    {
        var features = new JsonObject();
        foreach (var c in _embodiment.Cameras)
            features[c.FeatureKey] = new JsonObject
            {
                ["dtype"] = "image",
                ["shape"] = new JsonArray(c.Height, c.Width, 3),
                ["names"] = new JsonArray("height", "width", "channel"),
            };
        features[LeRobotFeatures.State] = Vector(_embodiment.StateNames);
        features[LeRobotFeatures.Action] = Vector(_embodiment.ActionNames);
        features[LeRobotFeatures.Timestamp] = Scalar("float32");
        foreach (var name in new[] { LeRobotFeatures.FrameIndex, LeRobotFeatures.EpisodeIndex, LeRobotFeatures.Index, LeRobotFeatures.TaskIndex }) features[name] = Scalar("int64");
        return new JsonObject
        {
            ["codebase_version"] = "v2.1",
            ["robot_type"] = _embodiment.Name,
            ["total_episodes"] = Episodes,
            ["total_frames"] = _frames,
            ["total_tasks"] = _tasks.Count,
            ["total_videos"] = 0,
            ["total_chunks"] = Episodes == 0 ? 0 : (Episodes - 1) / ChunksSize + 1,
            ["chunks_size"] = ChunksSize,
            ["fps"] = _embodiment.ControlHz,
            ["splits"] = new JsonObject { ["train"] = $"0:{Episodes}" },
            ["data_path"] = DataPath,
            ["video_path"] = null,
            ["features"] = features,
        };

        static JsonObject Vector(IReadOnlyList<string> names) => new()
        {
            ["dtype"] = "float32",
            ["shape"] = new JsonArray(names.Count),
            ["names"] = new JsonArray([.. names.Select(n => (JsonNode)n)]),
        };
        static JsonObject Scalar(string dtype) => new() { ["dtype"] = dtype, ["shape"] = new JsonArray(1), ["names"] = null };
    }

    private JsonObject Modality()
    {
        // InternVLA-M1 / GR00T style: which slice of state and action means what.
        static JsonObject Slices(IReadOnlyList<string> names) =>
            new([.. names.Select((n, i) => KeyValuePair.Create(n, (JsonNode?)new JsonObject { ["start"] = i, ["end"] = i + 1 }))]);
        return new JsonObject
        {
            ["state"] = Slices(_embodiment.StateNames),
            [LeRobotFeatures.Action] = Slices(_embodiment.ActionNames),
            ["video"] = new JsonObject([.. _embodiment.Cameras.Select(c =>
                KeyValuePair.Create(c.Name, (JsonNode?)new JsonObject { ["original_key"] = c.FeatureKey }))]),
            ["annotation"] = new JsonObject { ["human.task_description"] = new JsonObject { ["original_key"] = LeRobotFeatures.TaskIndex } },
        };
    }

    private static JsonObject EpisodeStats(RecordedEpisode episode, FrameRow[] rows, CameraSpec main, CameraSpec wrist)
    {
        var stats = new JsonObject
        {
            [main.FeatureKey] = ImageStats(episode.Frames.Select(f => f.Images["main"])),
            [wrist.FeatureKey] = ImageStats(episode.Frames.Select(f => f.Images["wrist"])),
            [LeRobotFeatures.State] = VectorStats(rows.Select(r => r.State.Select(v => (double)v).ToArray())),
            [LeRobotFeatures.Action] = VectorStats(rows.Select(r => r.Action.Select(v => (double)v).ToArray())),
            [LeRobotFeatures.Timestamp] = VectorStats(rows.Select(r => new double[] { r.Timestamp })),
            [LeRobotFeatures.FrameIndex] = VectorStats(rows.Select(r => new double[] { r.FrameIndex })),
            [LeRobotFeatures.EpisodeIndex] = VectorStats(rows.Select(r => new double[] { r.EpisodeIndex })),
            [LeRobotFeatures.Index] = VectorStats(rows.Select(r => new double[] { r.Index })),
            [LeRobotFeatures.TaskIndex] = VectorStats(rows.Select(r => new double[] { r.TaskIndex })),
        };
        return stats;
    }

    private static JsonObject VectorStats(IEnumerable<double[]> values)
    {
        var all = values.ToArray();
        var dim = all[0].Length;
        var mean = new double[dim];
        var std = new double[dim];
        var min = Enumerable.Repeat(double.PositiveInfinity, dim).ToArray();
        var max = Enumerable.Repeat(double.NegativeInfinity, dim).ToArray();
        foreach (var v in all)
            for (var d = 0; d < dim; d++)
            {
                mean[d] += v[d] / all.Length;
                min[d] = Math.Min(min[d], v[d]);
                max[d] = Math.Max(max[d], v[d]);
            }
        foreach (var v in all)
            for (var d = 0; d < dim; d++) std[d] += (v[d] - mean[d]) * (v[d] - mean[d]) / all.Length;
        return new JsonObject
        {
            ["min"] = Array(min),
            ["max"] = Array(max),
            ["mean"] = Array(mean),
            ["std"] = Array(std.Select(Math.Sqrt)),
            ["count"] = new JsonArray(all.Length),
        };
        static JsonArray Array(IEnumerable<double> xs) => new([.. xs.Select(x => (JsonNode)x)]);
    }

    /// <summary>Per-channel statistics of images scaled to [0, 1], shaped (3, 1, 1) as LeRobot stores them.</summary>
    private static JsonObject ImageStats(IEnumerable<byte[]> images)
    {
        var sum = new double[3];
        var sumSq = new double[3];
        var min = new[] { 255, 255, 255 };
        var max = new[] { 0, 0, 0 };
        long pixels = 0, count = 0;
        foreach (var img in images)
        {
            count++;
            for (var i = 0; i < img.Length; i += 3)
            {
                for (var c = 0; c < 3; c++)
                {
                    int v = img[i + c];
                    sum[c] += v;
                    sumSq[c] += v * v;
                    if (v < min[c]) min[c] = v;
                    if (v > max[c]) max[c] = v;
                }
                pixels++;
            }
        }
        var mean = sum.Select(s => s / pixels / 255.0).ToArray();
        var std = sumSq.Select((s, c) => Math.Sqrt(Math.Max(0, s / pixels / (255.0 * 255.0) - mean[c] * mean[c]))).ToArray();
        return new JsonObject
        {
            ["min"] = Channels(min.Select(v => v / 255.0)),
            ["max"] = Channels(max.Select(v => v / 255.0)),
            ["mean"] = Channels(mean),
            ["std"] = Channels(std),
            ["count"] = new JsonArray(count),
        };
        static JsonArray Channels(IEnumerable<double> xs) => new([.. xs.Select(x => (JsonNode)new JsonArray(new JsonArray(x)))]);
    }

    private static readonly JsonSerializerOptions LineOptions = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>One parquet row. Column names are LeRobot's; images are HF <c>Image</c> structs.</summary>
    internal sealed class FrameRow
    {
        [JsonPropertyName(LeRobotFeatures.ImagePrefix + "main")] public ImageCell ImageMain { get; set; } = new();
        [JsonPropertyName(LeRobotFeatures.ImagePrefix + "wrist")] public ImageCell ImageWrist { get; set; } = new();
        [JsonPropertyName(LeRobotFeatures.State)] public List<float> State { get; set; } = [];
        [JsonPropertyName(LeRobotFeatures.Action)] public List<float> Action { get; set; } = [];
        [JsonPropertyName(LeRobotFeatures.Timestamp)] public float Timestamp { get; set; }
        [JsonPropertyName(LeRobotFeatures.FrameIndex)] public long FrameIndex { get; set; }
        [JsonPropertyName(LeRobotFeatures.EpisodeIndex)] public long EpisodeIndex { get; set; }
        [JsonPropertyName(LeRobotFeatures.Index)] public long Index { get; set; }
        [JsonPropertyName(LeRobotFeatures.TaskIndex)] public long TaskIndex { get; set; }
    }

    /// <summary>An image cell: PNG bytes and a nominal file name.</summary>
    internal sealed class ImageCell
    {
        [JsonPropertyName("bytes")] public byte[] Bytes { get; set; } = [];
        [JsonPropertyName("path")] public string? Path { get; set; }
    }
}
