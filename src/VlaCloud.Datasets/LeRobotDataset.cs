using System.Collections;
using System.Globalization;
using System.Text.Json;
using Parquet.Serialization;

namespace VlaCloud.Datasets;

/// <summary>Where one episode's frames are.</summary>
/// <param name="Index">Episode index.</param>
/// <param name="Length">Number of frames.</param>
/// <param name="Tasks">Task texts of the episode.</param>
/// <param name="DataFile">Parquet file with its frames, relative to the root.</param>
/// <param name="Videos">Per video feature: the file and the time window of this episode in it.</param>
public sealed record EpisodeInfo(int Index, int Length, IReadOnlyList<string> Tasks, string DataFile, IReadOnlyDictionary<string, VideoSegment> Videos);

/// <summary>The part of an mp4 file that holds one episode.</summary>
/// <param name="File">Video file, relative to the root.</param>
/// <param name="FromTimestamp">Start of the episode in the file, seconds.</param>
public sealed record VideoSegment(string File, double FromTimestamp);

/// <summary>The frames of one episode as plain arrays.</summary>
/// <param name="Episode">Which episode.</param>
/// <param name="TaskIndices">Task index per frame.</param>
/// <param name="States">State per frame (empty arrays when the dataset has no state).</param>
/// <param name="Actions">Action per frame.</param>
/// <param name="Images">Per camera feature, one image per frame (empty when images were not requested).</param>
public sealed record EpisodeData(EpisodeInfo Episode, int[] TaskIndices, float[][] States, float[][] Actions, IReadOnlyDictionary<string, RgbImage[]> Images);

/// <summary>The outcome of validating a dataset: what is wrong, or what it contains.</summary>
/// <param name="Issues">Every problem found, per file; empty when the dataset is valid.</param>
/// <param name="Dataset">The opened dataset when its metadata could be read (even if frames have issues).</param>
/// <param name="Statistics">Normalisation statistics, when the dataset is valid.</param>
/// <param name="SpatialAnnotationCount">Number of spatial annotation records found (0 when the optional file is absent).</param>
public sealed record DatasetInspection(IReadOnlyList<DatasetIssue> Issues, LeRobotDataset? Dataset, DatasetStatistics? Statistics, int SpatialAnnotationCount)
{
    /// <summary>Whether the dataset can be used for training.</summary>
    public bool IsValid => Issues.Count == 0 && Dataset is not null && Statistics is not null;
}

/// <summary>
/// A LeRobot dataset on disk (layouts v2.0/v2.1: a parquet file per episode; v3.0: many episodes per
/// file). <see cref="InspectAsync"/> validates everything a training job relies on and reports each
/// problem with its file; <see cref="ReadEpisodeAsync"/> reads frames as plain arrays.
/// </summary>
public sealed class LeRobotDataset
{
    /// <summary>The state feature's name.</summary>
    public const string StateFeature = LeRobotFeatures.State;

    /// <summary>The action feature's name.</summary>
    public const string ActionFeature = LeRobotFeatures.Action;

    /// <summary>Optional per-frame spatial labels (points, boxes, trajectories) written by VlaCloud's simulator.</summary>
    public const string SpatialAnnotationsFile = "meta/spatial_annotations.jsonl";

    private const int MaxIssues = 200;
    private readonly Dictionary<string, IList<Dictionary<string, object>>> dataFiles = new(StringComparer.Ordinal);

    private LeRobotDataset(string root, LeRobotInfo info, IReadOnlyList<string> tasks, IReadOnlyList<EpisodeInfo> episodes)
    {
        Root = root;
        Info = info;
        Tasks = tasks;
        Episodes = episodes;
    }

    /// <summary>The dataset's root folder (the one with <c>meta/info.json</c>).</summary>
    public string Root { get; }

    /// <summary>Its <c>meta/info.json</c>.</summary>
    public LeRobotInfo Info { get; }

    /// <summary>Task texts by task index.</summary>
    public IReadOnlyList<string> Tasks { get; }

    /// <summary>Its episodes, by index.</summary>
    public IReadOnlyList<EpisodeInfo> Episodes { get; }

    /// <summary>Total frames over all episodes.</summary>
    public int TotalFrames => Episodes.Sum(e => e.Length);

    /// <summary>Finds the dataset root under <paramref name="folder"/>: the folder itself or the one subfolder that holds meta/info.json.</summary>
    public static string? FindRoot(string folder)
    {
        if (File.Exists(Path.Combine(folder, "meta", "info.json"))) return folder;
        var candidates = Directory.EnumerateFiles(folder, "info.json", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(Path.GetDirectoryName(f)) == "meta")
            .Select(f => Path.GetDirectoryName(Path.GetDirectoryName(f))!)
            .ToList();
        return candidates.Count == 1 ? candidates[0] : null;
    }

    /// <summary>
    /// Validates the dataset in <paramref name="folder"/>: metadata, tasks, episodes, every data file's
    /// schema, row counts, indices and timestamps, images or videos, and the fit to
    /// <paramref name="expectations"/>; computes statistics when it is valid.
    /// </summary>
    public static async Task<DatasetInspection> InspectAsync(string folder, DatasetExpectations? expectations, CancellationToken cancellationToken)
    {
        var issues = new List<DatasetIssue>();
        var root = FindRoot(folder);
        if (root is null)
        {
            issues.Add(new("meta/info.json", "not found: a LeRobot dataset has meta/info.json at its root (or in a single top-level folder)."));
            return new DatasetInspection(issues, null, null, 0);
        }
        if (DatasetPaths.Resolve(root, "meta/info.json") is not { } infoPath)
        {
            issues.Add(new("meta/info.json", "is a link; a dataset's files must be regular files inside its folder."));
            return new DatasetInspection(issues, null, null, 0);
        }
        var info = LeRobotInfo.Parse(await File.ReadAllTextAsync(infoPath, cancellationToken), issues);
        if (info is null) return new DatasetInspection(issues, null, null, 0);

        var tasks = info.IsV3 ? await ReadTasksV3Async(root, issues, cancellationToken) : ReadTasksV2(root, issues);
        var episodes = info.IsV3 ? await ReadEpisodesV3Async(root, info, issues, cancellationToken) : ReadEpisodesV2(root, info, issues);
        var dataset = new LeRobotDataset(root, info, tasks, episodes);
        if (issues.Count > 0) return new DatasetInspection(issues, dataset, null, 0);

        CheckTotals(info, tasks, episodes, issues);
        if (expectations is not null) CheckExpectations(info, expectations, issues);

        var states = new List<float[]>();
        var actions = new List<float[]>();
        foreach (var episode in episodes)
        {
            if (issues.Count >= MaxIssues) break;
            await dataset.CheckEpisodeAsync(episode, tasks.Count, issues, states, actions, cancellationToken);
        }
        var spatial = CountSpatialAnnotations(root, issues);
        if (issues.Count > 0 || actions.Count == 0)
        {
            if (actions.Count == 0 && issues.Count == 0) issues.Add(new("meta/episodes", "the dataset has no frames."));
            return new DatasetInspection(issues.Take(MaxIssues).ToList(), dataset, null, spatial);
        }
        var statistics = new DatasetStatistics(
            info.Features.ContainsKey(StateFeature) ? FeatureStatistics.Compute(states) : null,
            FeatureStatistics.Compute(actions));
        return new DatasetInspection(issues, dataset, statistics, spatial);
    }

    /// <summary>Reads one episode's frames; images (decoded, per camera) only when <paramref name="includeImages"/>.</summary>
    public async Task<EpisodeData> ReadEpisodeAsync(EpisodeInfo episode, bool includeImages, CancellationToken cancellationToken)
    {
        var rows = await EpisodeRowsAsync(episode, cancellationToken);
        var hasState = Info.Features.ContainsKey(StateFeature);
        var data = new EpisodeData(
            episode,
            rows.Select(r => (int)Convert.ToInt64(r["task_index"], CultureInfo.InvariantCulture)).ToArray(),
            rows.Select(r => hasState ? ToFloats(r[StateFeature]) ?? [] : []).ToArray(),
            rows.Select(r => ToFloats(r[ActionFeature]) ?? []).ToArray(),
            new Dictionary<string, RgbImage[]>());
        if (!includeImages) return data;

        var images = (Dictionary<string, RgbImage[]>)data.Images;
        foreach (var camera in Info.Cameras)
        {
            images[camera.Name] = camera.IsVideo
                ? await VideoReader.ReadFramesAsync(PathOf(episode.Videos[camera.Name].File), episode.Videos[camera.Name].FromTimestamp,
                    episode.Length, Info.Fps, camera.ImageWidth, camera.ImageHeight, cancellationToken)
                : rows.Select(r => DecodeFrame(episode.DataFile, camera, ImageBytes(r[camera.Name]))).ToArray();
        }
        return data;
    }

    /// <summary>
    /// A frame's image, decoded only when its header declares at most the camera's size: a bigger one is an error before
    /// any pixel is decoded (a PNG of a few hundred bytes can declare 50000×50000).
    /// </summary>
    private static RgbImage DecodeFrame(string file, LeRobotFeature camera, byte[]? bytes)
    {
        var decoded = bytes is null ? null : RgbImage.Decode(bytes, camera.ImageWidth, camera.ImageHeight);
        return decoded?.Image ?? throw new InvalidDataException(decoded?.Status == ImageDecodeStatus.TooLarge
            ? $"{file}: an image of '{camera.Name}' is {decoded.Header!.Width}×{decoded.Header.Height}, larger than the {camera.ImageWidth}×{camera.ImageHeight} meta/info.json declares."
            : $"{file}: an image of '{camera.Name}' cannot be decoded.");
    }

    /// <summary>The full path of a file the metadata names, refused unless it stays inside the dataset folder.</summary>
    private string PathOf(string relative) =>
        DatasetPaths.Resolve(Root, relative) ?? throw new InvalidDataException($"'{relative}' is outside the dataset folder.");

    private async Task CheckEpisodeAsync(EpisodeInfo episode, int taskCount, List<DatasetIssue> issues, List<float[]> states, List<float[]> actions, CancellationToken cancellationToken)
    {
        var file = episode.DataFile;
        if (DatasetPaths.Resolve(Root, file) is not { } path)
        {
            issues.Add(new("meta/info.json", $"data_path expands to '{file}' for episode {episode.Index}, which is not a path inside the dataset folder."));
            return;
        }
        if (!File.Exists(path))
        {
            issues.Add(new(file, $"missing (episode {episode.Index})."));
            return;
        }
        IList<Dictionary<string, object>> rows;
        try
        {
            rows = await EpisodeRowsAsync(episode, cancellationToken);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or ApplicationException or IndexOutOfRangeException)
        {
            issues.Add(new(file, $"is not a readable parquet file: {e.Message}"));
            return;
        }
        if (rows.Count != episode.Length)
        {
            issues.Add(new(file, $"episode {episode.Index} has {rows.Count} rows; the episode metadata says {episode.Length}."));
            return;
        }

        var columns = rows.Count > 0 ? rows[0].Keys.ToHashSet(StringComparer.Ordinal) : [];
        var missing = Info.Features.Values.Where(f => !f.IsVideo && !columns.Contains(f.Name)).Select(f => f.Name).ToList();
        if (missing.Count > 0)
        {
            issues.Add(new(file, $"lacks the column(s) {string.Join(", ", missing)} declared in meta/info.json."));
            return;
        }

        for (var i = 0; i < rows.Count && issues.Count < MaxIssues; i++)
        {
            var row = rows[i];
            string At() => $"row {i} (episode {episode.Index})";
            if (Long(row["episode_index"]) != episode.Index) issues.Add(new(file, $"{At()}: episode_index is {row["episode_index"]}."));
            if (Long(row["frame_index"]) != i) issues.Add(new(file, $"{At()}: frame_index is {row["frame_index"]}, expected {i}."));
            var timestamp = Convert.ToDouble(row["timestamp"], CultureInfo.InvariantCulture);
            var firstTimestamp = Convert.ToDouble(rows[0]["timestamp"], CultureInfo.InvariantCulture);
            if (Math.Abs(timestamp - firstTimestamp - i / Info.Fps) > 1e-4)
                issues.Add(new(file, $"{At()}: timestamp {timestamp:0.######} does not match frame {i} at {Info.Fps} fps (tolerance 1e-4 s)."));
            if (Long(row["task_index"]) is var task && (task < 0 || task >= taskCount))
                issues.Add(new(file, $"{At()}: task_index {task} is not in meta tasks (0..{taskCount - 1})."));

            foreach (var feature in Info.Features.Values.Where(f => f.Dtype is "float32" or "float64" && f.Name is ActionFeature or StateFeature))
            {
                var values = ToFloats(row[feature.Name]);
                if (values is null || values.Length != feature.Width)
                    issues.Add(new(file, $"{At()}: '{feature.Name}' has {values?.Length.ToString(CultureInfo.InvariantCulture) ?? "no"} values; meta/info.json declares {feature.Width}."));
                else if (values.Any(v => !float.IsFinite(v)))
                    issues.Add(new(file, $"{At()}: '{feature.Name}' contains NaN or infinity."));
                else if (feature.Name == ActionFeature) actions.Add(values);
                else states.Add(values);
            }
        }

        foreach (var camera in Info.Cameras.Where(c => !c.IsVideo))
            CheckImages(file, camera, rows, issues);
        foreach (var camera in Info.Cameras.Where(c => c.IsVideo))
            await CheckVideoAsync(episode, camera, issues, cancellationToken);
    }

    private static void CheckImages(string file, LeRobotFeature camera, IList<Dictionary<string, object>> rows, List<DatasetIssue> issues)
    {
        // Every frame must carry bytes whose header declares the camera's size (reading a header costs no pixels);
        // decoding every frame would double validation time for nothing, so the first and last are decoded.
        const int MaxImageIssues = 3;
        var found = 0;
        for (var i = 0; i < rows.Count && found < MaxImageIssues; i++)
        {
            if (ImageBytes(rows[i][camera.Name]) is not { Length: > 0 } bytes)
            {
                issues.Add(new(file, $"row {i}: '{camera.Name}' has no image bytes."));
                return;
            }
            var header = RgbImage.ReadHeader(bytes);
            var issue = header is null ? "is not a PNG or JPEG image."
                : header.Width != camera.ImageWidth || header.Height != camera.ImageHeight
                    ? $"is {header.Width}×{header.Height}; meta/info.json declares {camera.ImageWidth}×{camera.ImageHeight}."
                : (i == 0 || i == rows.Count - 1) && RgbImage.Decode(bytes, camera.ImageWidth, camera.ImageHeight).Image is null ? "cannot be decoded."
                : null;
            if (issue is null) continue;
            issues.Add(new(file, $"row {i}: '{camera.Name}' {issue}"));
            found++;
        }
    }

    private async Task CheckVideoAsync(EpisodeInfo episode, LeRobotFeature camera, List<DatasetIssue> issues, CancellationToken cancellationToken)
    {
        if (!episode.Videos.TryGetValue(camera.Name, out var segment))
        {
            issues.Add(new("meta/episodes", $"episode {episode.Index} has no video entry for '{camera.Name}'."));
            return;
        }
        if (DatasetPaths.Resolve(Root, segment.File) is not { } path)
        {
            issues.Add(new("meta/info.json", $"video_path expands to '{segment.File}' for '{camera.Name}' of episode {episode.Index}, which is not a path inside the dataset folder."));
            return;
        }
        if (!File.Exists(path))
        {
            issues.Add(new(segment.File, $"missing (video '{camera.Name}' of episode {episode.Index})."));
            return;
        }
        try
        {
            var (width, height, frames, duration) = await VideoReader.ProbeAsync(path, cancellationToken);
            if (width != camera.ImageWidth || height != camera.ImageHeight)
                issues.Add(new(segment.File, $"is {width}×{height}; meta/info.json declares {camera.ImageWidth}×{camera.ImageHeight} for '{camera.Name}'."));
            var available = Info.IsV3 ? (int)Math.Round((duration - segment.FromTimestamp) * Info.Fps) : frames;
            if (available < episode.Length)
                issues.Add(new(segment.File, $"has {available} frames for episode {episode.Index}; it needs {episode.Length}."));
        }
        catch (InvalidDataException e)
        {
            issues.Add(new(segment.File, $"cannot be read as a video: {e.Message}"));
        }
    }

    private async Task<IList<Dictionary<string, object>>> EpisodeRowsAsync(EpisodeInfo episode, CancellationToken cancellationToken)
    {
        if (!dataFiles.TryGetValue(episode.DataFile, out var rows))
        {
            await using var stream = File.OpenRead(PathOf(episode.DataFile));
            rows = (await ParquetSerializer.DeserializeUntypedAsync(stream, cancellationToken: cancellationToken)).Data;
            // v3.0 files hold many episodes: keep the last one read, episodes come in file order.
            dataFiles.Clear();
            dataFiles[episode.DataFile] = rows;
        }
        return Info.IsV3 ? rows.Where(r => r.TryGetValue("episode_index", out var e) && Long(e) == episode.Index).ToList() : rows;
    }

    private static List<string> ReadTasksV2(string root, List<DatasetIssue> issues)
    {
        const string file = "meta/tasks.jsonl";
        var tasks = new SortedDictionary<int, string>();
        foreach (var (line, number) in JsonLines(root, file, issues))
        {
            if (Int(line, "task_index") is { } index && Str(line, "task") is { } task) tasks[index] = task;
            else issues.Add(new(file, $"line {number}: needs task_index (integer) and task (string)."));
        }
        return Dense(tasks, file, "task_index", issues);
    }

    private static async Task<List<string>> ReadTasksV3Async(string root, List<DatasetIssue> issues, CancellationToken cancellationToken)
    {
        const string file = "meta/tasks.parquet";
        var tasks = new SortedDictionary<int, string>();
        foreach (var row in await ReadParquetAsync(root, file, issues, cancellationToken))
        {
            // pandas writes the task text as the frame's index: a column named "task" or "__index_level_0__".
            var text = row.TryGetValue("task", out var t) ? t as string : row.TryGetValue("__index_level_0__", out var i) ? i as string : null;
            if (text is not null && row.TryGetValue("task_index", out var index)) tasks[(int)Long(index)] = text;
            else issues.Add(new(file, "each row needs task_index and task."));
        }
        return Dense(tasks, file, "task_index", issues);
    }

    private static List<EpisodeInfo> ReadEpisodesV2(string root, LeRobotInfo info, List<DatasetIssue> issues)
    {
        const string file = "meta/episodes.jsonl";
        var episodes = new SortedDictionary<int, EpisodeInfo>();
        foreach (var (line, number) in JsonLines(root, file, issues))
        {
            if (Int(line, "episode_index") is not { } index || Int(line, "length") is not { } length || length <= 0)
            {
                issues.Add(new(file, $"line {number}: needs episode_index and a positive length."));
                continue;
            }
            var episodeTasks = line.TryGetProperty("tasks", out var t) && t.ValueKind == JsonValueKind.Array
                ? t.EnumerateArray().Select(x => x.GetString() ?? "").ToList()
                : [];
            var values = new Dictionary<string, object> { ["episode_chunk"] = index / Math.Max(1, info.ChunksSize), ["episode_index"] = index };
            var videos = info.Cameras.Where(c => c.IsVideo).ToDictionary(
                c => c.Name,
                c => new VideoSegment(LeRobotInfo.FormatPath(info.VideoPath!, new Dictionary<string, object>(values) { ["video_key"] = c.Name }), 0));
            episodes[index] = new EpisodeInfo(index, length, episodeTasks, LeRobotInfo.FormatPath(info.DataPath, values), videos);
        }
        Dense(episodes, file, "episode_index", issues);
        return episodes.Values.ToList();
    }

    private static async Task<List<EpisodeInfo>> ReadEpisodesV3Async(string root, LeRobotInfo info, List<DatasetIssue> issues, CancellationToken cancellationToken)
    {
        var folder = Path.Combine(root, "meta", "episodes");
        var files = Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder, "*.parquet", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList()
            : [];
        if (files.Count == 0) issues.Add(new("meta/episodes", "has no parquet files (v3.0 keeps episode metadata in meta/episodes/chunk-XXX/file-XXX.parquet)."));
        var episodes = new SortedDictionary<int, EpisodeInfo>();
        foreach (var path in files)
        {
            var file = Path.GetRelativePath(root, path).Replace('\\', '/');
            foreach (var row in await ReadParquetAsync(root, file, issues, cancellationToken))
            {
                long? Get(string key) => row.TryGetValue(key, out var v) && v is not null ? Long(v) : null;
                if (Get("episode_index") is not { } index || Get("length") is not { } length || Get("data/chunk_index") is not { } chunk || Get("data/file_index") is not { } fileIndex)
                {
                    issues.Add(new(file, "each row needs episode_index, length, data/chunk_index and data/file_index."));
                    continue;
                }
                var data = LeRobotInfo.FormatPath(info.DataPath, new Dictionary<string, object> { ["chunk_index"] = chunk, ["file_index"] = fileIndex });
                var videos = new Dictionary<string, VideoSegment>();
                foreach (var camera in info.Cameras.Where(c => c.IsVideo))
                {
                    if (Get($"videos/{camera.Name}/chunk_index") is not { } vChunk || Get($"videos/{camera.Name}/file_index") is not { } vFile)
                    {
                        issues.Add(new(file, $"episode {index} lacks videos/{camera.Name}/chunk_index and file_index."));
                        continue;
                    }
                    var from = row.TryGetValue($"videos/{camera.Name}/from_timestamp", out var f) && f is not null ? Convert.ToDouble(f, CultureInfo.InvariantCulture) : 0;
                    videos[camera.Name] = new VideoSegment(
                        LeRobotInfo.FormatPath(info.VideoPath!, new Dictionary<string, object> { ["video_key"] = camera.Name, ["chunk_index"] = vChunk, ["file_index"] = vFile }),
                        from);
                }
                var tasks = row.TryGetValue("tasks", out var t) && t is IEnumerable list and not string ? list.Cast<object>().Select(x => x.ToString() ?? "").ToList() : [];
                episodes[(int)index] = new EpisodeInfo((int)index, (int)length, tasks, data, videos);
            }
        }
        Dense(episodes, "meta/episodes", "episode_index", issues);
        return episodes.Values.ToList();
    }

    private static void CheckTotals(LeRobotInfo info, IReadOnlyList<string> tasks, IReadOnlyList<EpisodeInfo> episodes, List<DatasetIssue> issues)
    {
        const string file = "meta/info.json";
        if (info.TotalEpisodes != episodes.Count) issues.Add(new(file, $"total_episodes is {info.TotalEpisodes}; the dataset has {episodes.Count} episodes."));
        var frames = episodes.Sum(e => e.Length);
        if (info.TotalFrames != frames) issues.Add(new(file, $"total_frames is {info.TotalFrames}; the episodes add up to {frames}."));
        if (info.TotalTasks != tasks.Count) issues.Add(new(file, $"total_tasks is {info.TotalTasks}; the dataset has {tasks.Count} tasks."));
        if (!info.Features.TryGetValue(ActionFeature, out var action) || action.Dtype is not ("float32" or "float64"))
            issues.Add(new(file, "needs a float32 'action' feature."));
        if (info.Features.TryGetValue(StateFeature, out var state) && state.Dtype is not ("float32" or "float64"))
            issues.Add(new(file, "'observation.state' must be float32 or float64."));
    }

    private static void CheckExpectations(LeRobotInfo info, DatasetExpectations expected, List<DatasetIssue> issues)
    {
        const string file = "meta/info.json";
        if (info.Features.TryGetValue(ActionFeature, out var action) && action.Width != expected.ActionDim)
            issues.Add(new(file, $"'action' has {action.Width} dimensions; the embodiment has {expected.ActionDim}."));
        var stateWidth = info.Features.TryGetValue(StateFeature, out var state) ? state.Width : 0;
        if (expected.StateDim > 0 && stateWidth != expected.StateDim)
            issues.Add(new(file, $"'observation.state' has {stateWidth} dimensions; the embodiment has {expected.StateDim}."));
        foreach (var camera in expected.Cameras)
        {
            var name = DatasetExpectations.CameraFeature(camera);
            if (!info.Features.TryGetValue(name, out var feature) || !feature.IsCamera)
                issues.Add(new(file, $"has no camera '{name}' that the embodiment needs (cameras: {string.Join(", ", info.Cameras.Select(c => c.Name))})."));
            else if (expected.ImageWidth is { } w && expected.ImageHeight is { } h && (feature.ImageWidth != w || feature.ImageHeight != h))
                issues.Add(new(file, $"camera '{name}' is {feature.ImageWidth}×{feature.ImageHeight}; the embodiment expects {w}×{h}."));
        }
    }

    private static int CountSpatialAnnotations(string root, List<DatasetIssue> issues)
    {
        if (!File.Exists(Path.Combine(root, SpatialAnnotationsFile))) return 0;
        var count = 0;
        foreach (var (line, number) in JsonLines(root, SpatialAnnotationsFile, issues))
        {
            if (Int(line, "episode_index") is null || Int(line, "frame_index") is null)
                issues.Add(new(SpatialAnnotationsFile, $"line {number}: needs episode_index and frame_index."));
            else count++;
        }
        return count;
    }

    private static IEnumerable<(JsonElement Line, int Number)> JsonLines(string root, string file, List<DatasetIssue> issues)
    {
        var path = DatasetPaths.Resolve(root, file);
        if (path is null || !File.Exists(path))
        {
            issues.Add(new(file, path is null ? "is a link or outside the dataset folder." : "missing."));
            yield break;
        }
        var number = 0;
        foreach (var text in File.ReadLines(path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonElement line;
            try
            {
                line = JsonDocument.Parse(text).RootElement;
            }
            catch (JsonException e)
            {
                issues.Add(new(file, $"line {number}: not valid JSON ({e.Message})."));
                continue;
            }
            yield return (line, number);
        }
    }

    private static async Task<IList<Dictionary<string, object>>> ReadParquetAsync(string root, string file, List<DatasetIssue> issues, CancellationToken cancellationToken)
    {
        var path = DatasetPaths.Resolve(root, file);
        if (path is null || !File.Exists(path))
        {
            issues.Add(new(file, path is null ? "is a link or outside the dataset folder." : "missing."));
            return [];
        }
        try
        {
            await using var stream = File.OpenRead(path);
            return (await ParquetSerializer.DeserializeUntypedAsync(stream, cancellationToken: cancellationToken)).Data;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or ApplicationException or IndexOutOfRangeException)
        {
            issues.Add(new(file, $"is not a readable parquet file: {e.Message}"));
            return [];
        }
    }

    private static List<T> Dense<T>(SortedDictionary<int, T> byIndex, string file, string key, List<DatasetIssue> issues)
    {
        var expected = 0;
        foreach (var index in byIndex.Keys)
        {
            if (index != expected)
            {
                issues.Add(new(file, $"{key} values must be 0..{byIndex.Count - 1} without gaps; {expected} is missing."));
                break;
            }
            expected++;
        }
        return byIndex.Values.ToList();
    }

    private static int? Int(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.TryGetInt32(out var i) ? i : null;

    private static string? Str(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static long Long(object? value) => value is null ? -1 : Convert.ToInt64(value, CultureInfo.InvariantCulture);

    /// <summary>A numeric cell as floats: list columns, and scalar columns of shape (1,).</summary>
    private static float[]? ToFloats(object? value) => value switch
    {
        null => null,
        float f => [f],
        double d => [(float)d],
        IEnumerable<float> floats => floats.ToArray(),
        IEnumerable<double> doubles => doubles.Select(d => (float)d).ToArray(),
        IEnumerable list and not string => list.Cast<object?>().Select(v => v is null ? float.NaN : Convert.ToSingle(v, CultureInfo.InvariantCulture)).ToArray(),
        _ => null,
    };

    private static byte[]? ImageBytes(object? cell) =>
        cell is IDictionary<string, object> image && image.TryGetValue("bytes", out var bytes) ? bytes as byte[] : null;
}
