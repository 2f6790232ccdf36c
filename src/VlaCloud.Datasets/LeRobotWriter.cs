using System.Text.Json;
using System.Text.Json.Nodes;
using Parquet;
using Parquet.Schema;
using Parquet.Serialization;

namespace VlaCloud.Datasets;

/// <summary>The metadata layouts <see cref="LeRobotWriter"/> writes.</summary>
public enum LeRobotLayout
{
    /// <summary>
    /// v2.1: a parquet file per episode (<c>data/chunk-XXX/episode_XXXXXX.parquet</c>), <c>meta/episodes.jsonl</c>,
    /// <c>meta/tasks.jsonl</c> and per-episode statistics in <c>meta/episodes_stats.jsonl</c>.
    /// </summary>
    V21,

    /// <summary>
    /// v3.0: many episodes per data file (<c>data/chunk-XXX/file-XXX.parquet</c>, one row group an episode), episode
    /// metadata in <c>meta/episodes/chunk-XXX/file-XXX.parquet</c>, tasks in <c>meta/tasks.parquet</c> and the
    /// dataset's statistics in <c>meta/stats.json</c> (which LeRobot's v3.0 loader reads for normalisation).
    /// </summary>
    V30,
}

/// <summary>A camera of a dataset being written: images are RGB uint8 HWC of this size, stored as PNG.</summary>
/// <param name="Name">Short name; the feature is <c>observation.images.{Name}</c> (<see cref="LeRobotFeatures.Camera"/>).</param>
/// <param name="Width">Image width in pixels.</param>
/// <param name="Height">Image height in pixels.</param>
public sealed record LeRobotCamera(string Name, int Width, int Height)
{
    /// <summary>The camera's feature (column) name.</summary>
    public string Feature => LeRobotFeatures.Camera(Name);
}

/// <summary>What every frame of a dataset being written carries.</summary>
/// <param name="RobotType">The <c>robot_type</c> of <c>meta/info.json</c>.</param>
/// <param name="Fps">Frames per second; frame t has timestamp t / fps.</param>
/// <param name="StateNames">One name per <see cref="LeRobotFeatures.State"/> dimension.</param>
/// <param name="ActionNames">One name per <see cref="LeRobotFeatures.Action"/> dimension.</param>
/// <param name="Cameras">Cameras in column order.</param>
public sealed record LeRobotSchema(string RobotType, double Fps, IReadOnlyList<string> StateNames, IReadOnlyList<string> ActionNames, IReadOnlyList<LeRobotCamera> Cameras);

/// <summary>One frame to write.</summary>
/// <param name="Images">RGB uint8 HWC pixels by camera name, one per camera of the schema.</param>
/// <param name="State">State values, one per state name.</param>
/// <param name="Action">Action values, one per action name.</param>
/// <param name="Annotation">
/// VlaCloud's spatial annotation of the frame (a line of <see cref="LeRobotDataset.SpatialAnnotationsFile"/> after its
/// <c>episode_index</c>, <c>frame_index</c> and <c>index</c>), or null for none.
/// </param>
public sealed record LeRobotFrame(IReadOnlyDictionary<string, byte[]> Images, float[] State, float[] Action, JsonObject? Annotation = null);

/// <summary>One episode to write.</summary>
/// <param name="Task">The episode's task text (instruction).</param>
/// <param name="Frames">Its frames, at least one.</param>
/// <param name="Metadata">
/// Extra fields of the episode's metadata that LeRobot ignores (where it came from, for evaluation protocols), or null.
/// In v3.0 each becomes a column of the episodes file, so its values are strings, integers, numbers or booleans.
/// </param>
public sealed record LeRobotEpisode(string Task, IReadOnlyList<LeRobotFrame> Frames, JsonObject? Metadata = null);

/// <summary>
/// Writes a LeRobot dataset one episode at a time (frames are not kept in memory): images inline in the parquet files
/// as PNG structs <c>{bytes, path}</c>, the layout's metadata, and <c>meta/modality.json</c> (GR00T / InternVLA-M1
/// slices of state and action). What the frames mean is the caller's: this knows the format only.
/// </summary>
public sealed class LeRobotWriter
{
    /// <summary>Episodes per chunk folder (v2.1) and files per chunk folder (v3.0), as LeRobot's default.</summary>
    public const int ChunksSize = 1000;

    /// <summary>Path template of episode files (v2.1).</summary>
    public const string DataPathV21 = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet";

    /// <summary>Path template of data files (v3.0).</summary>
    public const string DataPathV30 = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet";

    /// <summary>Size past which a v3.0 data file is closed and the next episode starts a new one, as LeRobot's default.</summary>
    public const long DataFileBytes = 100L * 1024 * 1024;

    private readonly string _root;
    private readonly LeRobotSchema _schema;
    private readonly LeRobotLayout _layout;
    private readonly ParquetSchema _frameSchema;
    private readonly Dictionary<string, int> _tasks = new(StringComparer.Ordinal);
    private readonly List<string> _episodeLines = [];
    private readonly List<string> _statsLines = [];
    private readonly List<JsonObject> _episodeStats = [];
    private readonly List<IDictionary<string, object?>> _episodeRows = [];
    private StreamWriter? _annotations;
    private int _dataFile;
    private int _episodes;
    private int _frames;

    /// <summary>Starts a dataset in <paramref name="root"/> (created; must be empty or absent).</summary>
    public LeRobotWriter(string root, LeRobotSchema schema, LeRobotLayout layout = LeRobotLayout.V21)
    {
        if (Directory.Exists(root) && Directory.EnumerateFileSystemEntries(root).Any())
            throw new IOException($"'{root}' is not empty");
        if (schema.Cameras.Select(c => c.Name).Distinct(StringComparer.Ordinal).Count() != schema.Cameras.Count)
            throw new ArgumentException("camera names must be distinct", nameof(schema));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(schema.Fps, nameof(schema));
        _root = root;
        _schema = schema;
        _layout = layout;
        _frameSchema = FrameSchema(schema);
        Directory.CreateDirectory(Path.Combine(root, "meta"));
    }

    /// <summary>Episodes written so far.</summary>
    public int Episodes => _episodes;

    /// <summary>Frames written so far.</summary>
    public int Frames => _frames;

    /// <summary>Distinct tasks written so far.</summary>
    public int Tasks => _tasks.Count;

    /// <summary>Relative path of an episode's parquet file (v2.1).</summary>
    public static string EpisodePath(int episodeIndex) =>
        $"data/chunk-{episodeIndex / ChunksSize:000}/episode_{episodeIndex:000000}.parquet";

    /// <summary>Relative path of a v3.0 data file.</summary>
    public static string DataFilePath(int fileNumber) =>
        $"data/chunk-{fileNumber / ChunksSize:000}/file-{fileNumber % ChunksSize:000}.parquet";

    /// <summary>Appends one episode.</summary>
    public async Task AddEpisodeAsync(LeRobotEpisode episode, CancellationToken cancellationToken = default)
    {
        if (episode.Frames.Count == 0) throw new ArgumentException("an episode has at least one frame", nameof(episode));
        var episodeIndex = _episodes;
        // The task is recorded once the episode is known to fit, so a refused episode leaves no trace.
        var taskIndex = _tasks.TryGetValue(episode.Task, out var known) ? known : _tasks.Count;
        var metadataColumns = _layout == LeRobotLayout.V30 ? (episode.Metadata ?? []).Select(kv => KeyValuePair.Create(kv.Key, ColumnValue(kv.Key, kv.Value))).ToList() : [];

        var rows = new List<IDictionary<string, object?>>(episode.Frames.Count);
        for (var t = 0; t < episode.Frames.Count; t++)
        {
            var frame = episode.Frames[t];
            if (frame.State.Length != _schema.StateNames.Count || frame.Action.Length != _schema.ActionNames.Count)
                throw new ArgumentException($"frame {t} has {frame.State.Length} state and {frame.Action.Length} action values; the schema has {_schema.StateNames.Count} and {_schema.ActionNames.Count}", nameof(episode));
            var row = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var camera in _schema.Cameras)
            {
                if (!frame.Images.TryGetValue(camera.Name, out var rgb)) throw new ArgumentException($"frame {t} has no '{camera.Name}' image", nameof(episode));
                row[camera.Feature] = new Dictionary<string, object?>
                {
                    ["bytes"] = new ReadOnlyMemory<byte>(RgbImage.EncodePng(rgb, camera.Width, camera.Height)),
                    // LeRobot's name for an inline image (readers use the bytes). Datasets written before 2026-12-06 say
                    // "frame_96d.png" here: the format string was Python's spelling, which .NET reads as a custom format.
                    ["path"] = $"frame_{t:D6}.png",
                };
            }
            row[LeRobotFeatures.State] = frame.State;
            row[LeRobotFeatures.Action] = frame.Action;
            row[LeRobotFeatures.Timestamp] = (float)(t / _schema.Fps);
            row[LeRobotFeatures.FrameIndex] = (long)t;
            row[LeRobotFeatures.EpisodeIndex] = (long)episodeIndex;
            row[LeRobotFeatures.Index] = (long)(_frames + t);
            row[LeRobotFeatures.TaskIndex] = (long)taskIndex;
            rows.Add(row);
        }

        _tasks.TryAdd(episode.Task, taskIndex);
        if (_layout == LeRobotLayout.V21) await WriteParquetAsync(EpisodePath(episodeIndex), _frameSchema, rows, append: false, cancellationToken);
        else await AppendV3DataAsync(rows, cancellationToken);

        for (var t = 0; t < episode.Frames.Count; t++)
        {
            if (episode.Frames[t].Annotation is not { } annotation) continue;
            var line = new JsonObject
            {
                [LeRobotFeatures.EpisodeIndex] = episodeIndex,
                [LeRobotFeatures.FrameIndex] = t,
                [LeRobotFeatures.Index] = _frames + t,
            };
            foreach (var (key, value) in annotation) line[key] = value?.DeepClone();
            _annotations ??= new StreamWriter(Path.Combine(_root, LeRobotDataset.SpatialAnnotationsFile));
            await _annotations.WriteLineAsync(line.ToJsonString().AsMemory(), cancellationToken);
        }

        if (_layout == LeRobotLayout.V21)
        {
            var stats = EpisodeStats(episode, rows);
            var line = new JsonObject { [LeRobotFeatures.EpisodeIndex] = episodeIndex, ["tasks"] = new JsonArray(episode.Task), ["length"] = rows.Count };
            foreach (var (key, value) in episode.Metadata ?? []) line[key] = value?.DeepClone();
            _episodeLines.Add(line.ToJsonString());
            _statsLines.Add(new JsonObject { [LeRobotFeatures.EpisodeIndex] = episodeIndex, ["stats"] = stats }.ToJsonString());
        }
        else
        {
            _episodeStats.Add(EpisodeStats(episode, rows));
            var row = new Dictionary<string, object?>(StringComparer.Ordinal)
            {
                [LeRobotFeatures.EpisodeIndex] = (long)episodeIndex,
                // Parquet.Net's untyped writer takes the strings of a list column as character memory.
                ["tasks"] = new ReadOnlyMemory<char>?[] { episode.Task.AsMemory() },
                ["length"] = (long)rows.Count,
                ["data/chunk_index"] = (long)(_dataFile / ChunksSize),
                ["data/file_index"] = (long)(_dataFile % ChunksSize),
                ["dataset_from_index"] = (long)_frames,
                ["dataset_to_index"] = (long)(_frames + rows.Count),
            };
            foreach (var (key, value) in metadataColumns) row[key] = value;
            _episodeRows.Add(row);
        }
        _episodes++;
        _frames += rows.Count;
    }

    /// <summary>Writes the metadata files; call once after the last episode.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken = default)
    {
        if (_annotations is not null) await _annotations.DisposeAsync();
        var meta = Path.Combine(_root, "meta");
        if (_layout == LeRobotLayout.V21)
        {
            await File.WriteAllLinesAsync(Path.Combine(meta, "episodes.jsonl"), _episodeLines, cancellationToken);
            await File.WriteAllLinesAsync(Path.Combine(meta, "episodes_stats.jsonl"), _statsLines, cancellationToken);
            await File.WriteAllLinesAsync(Path.Combine(meta, "tasks.jsonl"),
                _tasks.OrderBy(t => t.Value).Select(t => new JsonObject { [LeRobotFeatures.TaskIndex] = t.Value, ["task"] = t.Key }.ToJsonString()), cancellationToken);
        }
        else
        {
            var tasks = _tasks.OrderBy(t => t.Value)
                .Select(t => (IDictionary<string, object?>)new Dictionary<string, object?> { [LeRobotFeatures.TaskIndex] = (long)t.Value, ["task"] = t.Key }).ToList();
            await WriteParquetAsync("meta/tasks.parquet", new ParquetSchema(new DataField<long>(LeRobotFeatures.TaskIndex), new DataField<string>("task")), tasks, append: false, cancellationToken);
            if (_episodeRows.Count > 0)
                await WriteParquetAsync("meta/episodes/chunk-000/file-000.parquet", EpisodesSchema(_episodeRows[0]), _episodeRows, append: false, cancellationToken);
            if (_episodeStats.Count > 0)
                await File.WriteAllTextAsync(Path.Combine(meta, "stats.json"), AggregateStats(_episodeStats).ToJsonString(Indented), cancellationToken);
        }
        await File.WriteAllTextAsync(Path.Combine(meta, "info.json"), Info().ToJsonString(Indented), cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(meta, "modality.json"), Modality().ToJsonString(Indented), cancellationToken);
    }

    private async Task AppendV3DataAsync(List<IDictionary<string, object?>> rows, CancellationToken cancellationToken)
    {
        // One row group an episode, appended, so an episode is never held with the next; a full file starts the next one.
        var current = Path.Combine(_root, DataFilePath(_dataFile));
        if (File.Exists(current) && new FileInfo(current).Length >= DataFileBytes) _dataFile++;
        var file = DataFilePath(_dataFile);
        await WriteParquetAsync(file, _frameSchema, rows, append: File.Exists(Path.Combine(_root, file)), cancellationToken);
    }

    private async Task WriteParquetAsync(string file, ParquetSchema schema, IReadOnlyCollection<IDictionary<string, object?>> rows, bool append, CancellationToken cancellationToken)
    {
        var path = Path.Combine(_root, file);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await using var stream = append ? new FileStream(path, FileMode.Open, FileAccess.ReadWrite) : File.Create(path);
        await ParquetSerializer.SerializeUntypedAsync(rows, schema, stream, new ParquetOptions { Append = append }, cancellationToken: cancellationToken);
    }

    /// <summary>The frame columns: cameras as HF <c>Image</c> structs, state and action as float lists, the index columns.</summary>
    private static ParquetSchema FrameSchema(LeRobotSchema schema)
    {
        var fields = new List<Field>();
        foreach (var camera in schema.Cameras)
            fields.Add(new StructField(camera.Feature, new DataField<byte[]>("bytes", true), new DataField<string>("path", true)));
        fields.Add(new ListField(LeRobotFeatures.State, new DataField<float>("element")));
        fields.Add(new ListField(LeRobotFeatures.Action, new DataField<float>("element")));
        fields.Add(new DataField<float>(LeRobotFeatures.Timestamp));
        foreach (var name in new[] { LeRobotFeatures.FrameIndex, LeRobotFeatures.EpisodeIndex, LeRobotFeatures.Index, LeRobotFeatures.TaskIndex })
            fields.Add(new DataField<long>(name));
        return new ParquetSchema(fields);
    }

    private static ParquetSchema EpisodesSchema(IDictionary<string, object?> first) =>
        new([.. first.Select(kv => kv.Value switch
        {
            ReadOnlyMemory<char>?[] => (Field)new ListField(kv.Key, new DataField<string>("element")),
            long => new DataField<long>(kv.Key),
            double => new DataField<double>(kv.Key),
            bool => new DataField<bool>(kv.Key),
            _ => new DataField<string>(kv.Key, true),
        })]);

    private static object ColumnValue(string key, JsonNode? value) => value switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        JsonValue v when v.TryGetValue<long>(out var l) => l,
        JsonValue v when v.TryGetValue<int>(out var i) => (long)i,
        JsonValue v when v.TryGetValue<double>(out var d) => d,
        _ => throw new ArgumentException($"episode metadata '{key}' must be a string, number or boolean in v3.0"),
    };

    private JsonObject Info()
    {
        var features = new JsonObject();
        foreach (var c in _schema.Cameras)
            features[c.Feature] = new JsonObject
            {
                ["dtype"] = "image",
                ["shape"] = new JsonArray(c.Height, c.Width, 3),
                ["names"] = new JsonArray("height", "width", "channel"),
            };
        features[LeRobotFeatures.State] = Vector(_schema.StateNames);
        features[LeRobotFeatures.Action] = Vector(_schema.ActionNames);
        features[LeRobotFeatures.Timestamp] = Scalar("float32");
        foreach (var name in new[] { LeRobotFeatures.FrameIndex, LeRobotFeatures.EpisodeIndex, LeRobotFeatures.Index, LeRobotFeatures.TaskIndex }) features[name] = Scalar("int64");
        var v3 = _layout == LeRobotLayout.V30;
        var info = new JsonObject
        {
            ["codebase_version"] = v3 ? "v3.0" : "v2.1",
            ["robot_type"] = _schema.RobotType,
            ["total_episodes"] = Episodes,
            ["total_frames"] = _frames,
            ["total_tasks"] = _tasks.Count,
        };
        if (!v3)
        {
            info["total_videos"] = 0;
            info["total_chunks"] = Episodes == 0 ? 0 : (Episodes - 1) / ChunksSize + 1;
        }
        info["chunks_size"] = ChunksSize;
        if (v3) info["data_files_size_in_mb"] = DataFileBytes / (1024 * 1024);
        info["fps"] = _schema.Fps;
        info["splits"] = new JsonObject { ["train"] = $"0:{Episodes}" };
        info["data_path"] = v3 ? DataPathV30 : DataPathV21;
        info["video_path"] = null;
        info["features"] = features;
        return info;

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
            ["state"] = Slices(_schema.StateNames),
            [LeRobotFeatures.Action] = Slices(_schema.ActionNames),
            ["video"] = new JsonObject([.. _schema.Cameras.Select(c =>
                KeyValuePair.Create(c.Name, (JsonNode?)new JsonObject { ["original_key"] = c.Feature }))]),
            ["annotation"] = new JsonObject { ["human.task_description"] = new JsonObject { ["original_key"] = LeRobotFeatures.TaskIndex } },
        };
    }

    private JsonObject EpisodeStats(LeRobotEpisode episode, List<IDictionary<string, object?>> rows)
    {
        var stats = new JsonObject();
        foreach (var camera in _schema.Cameras) stats[camera.Feature] = ImageStats(episode.Frames.Select(f => f.Images[camera.Name]));
        stats[LeRobotFeatures.State] = VectorStats(episode.Frames.Select(f => f.State.Select(v => (double)v).ToArray()));
        stats[LeRobotFeatures.Action] = VectorStats(episode.Frames.Select(f => f.Action.Select(v => (double)v).ToArray()));
        foreach (var column in LeRobotFeatures.IndexColumns)
            stats[column] = VectorStats(rows.Select(r => new[] { r[column] is float f ? f : (double)(long)r[column]! }));
        return stats;
    }

    /// <summary>
    /// The whole dataset's statistics from its episodes', as LeRobot's <c>aggregate_stats</c> combines them: elementwise
    /// min and max, the count-weighted mean, and the pooled standard deviation
    /// <c>sqrt(Σ nᵢ (σᵢ² + (μᵢ − μ)²) / Σ nᵢ)</c>; each keeps its episode shape (images' (3, 1, 1)).
    /// </summary>
    private static JsonObject AggregateStats(IReadOnlyList<JsonObject> episodes)
    {
        var total = new JsonObject();
        foreach (var (feature, _) in episodes[0])
        {
            var parts = episodes.Select(e => e[feature]!.AsObject()).ToArray();
            var counts = parts.Select(p => Leaves(p["count"]!)[0]).ToArray();
            var n = counts.Sum();
            double[] Stat(string name, int i) => Leaves(parts[i][name]!);
            var dim = Stat("mean", 0).Length;
            var min = new double[dim];
            var max = new double[dim];
            var mean = new double[dim];
            var variance = new double[dim];
            for (var d = 0; d < dim; d++)
            {
                min[d] = parts.Select((_, i) => Stat("min", i)[d]).Min();
                max[d] = parts.Select((_, i) => Stat("max", i)[d]).Max();
                mean[d] = parts.Select((_, i) => counts[i] * Stat("mean", i)[d]).Sum() / n;
                variance[d] = parts.Select((_, i) => counts[i] * (Math.Pow(Stat("std", i)[d], 2) + Math.Pow(Stat("mean", i)[d] - mean[d], 2))).Sum() / n;
            }
            var shape = parts[0]["mean"]!;
            total[feature] = new JsonObject
            {
                ["min"] = Shaped(shape, min),
                ["max"] = Shaped(shape, max),
                ["mean"] = Shaped(shape, mean),
                ["std"] = Shaped(shape, variance.Select(Math.Sqrt).ToArray()),
                ["count"] = new JsonArray((long)n),
            };
        }
        return total;

        static double[] Leaves(JsonNode node) => node is JsonArray array
            ? [.. array.SelectMany(item => Leaves(item!))]
            : [double.Parse(node.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture)];

        static JsonNode Shaped(JsonNode template, double[] values)
        {
            var next = 0;
            return Fill(template);
            JsonNode Fill(JsonNode node) => node is JsonArray array ? new JsonArray([.. array.Select(item => Fill(item!))]) : JsonValue.Create(values[next++]);
        }
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

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
}
