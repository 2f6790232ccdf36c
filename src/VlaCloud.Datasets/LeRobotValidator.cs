using System.Globalization;
using static VlaCloud.Datasets.LeRobotFiles;

namespace VlaCloud.Datasets;

/// <summary>
/// The checks <see cref="LeRobotDataset.InspectAsync"/> makes beyond parsing the metadata: totals, the fit to an
/// embodiment, and each episode's rows, images and videos against <c>meta/info.json</c>.
/// </summary>
internal sealed class LeRobotValidator(LeRobotDataset dataset)
{
    /// <summary>Issues reported at most; a broken dataset says enough by then.</summary>
    public const int MaxIssues = 200;

    private const string StateFeature = LeRobotFeatures.State;
    private const string ActionFeature = LeRobotFeatures.Action;
    private const string SpatialAnnotationsFile = LeRobotDataset.SpatialAnnotationsFile;

    private string Root => dataset.Root;
    private LeRobotInfo Info => dataset.Info;

    public async Task CheckEpisodeAsync(EpisodeInfo episode, int taskCount, List<DatasetIssue> issues, List<float[]> states, List<float[]> actions, CancellationToken cancellationToken)
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
            rows = await dataset.EpisodeRowsAsync(episode, cancellationToken);
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
            if (Long(row[LeRobotFeatures.EpisodeIndex]) != episode.Index) issues.Add(new(file, $"{At()}: episode_index is {row[LeRobotFeatures.EpisodeIndex]}."));
            if (Long(row[LeRobotFeatures.FrameIndex]) != i) issues.Add(new(file, $"{At()}: frame_index is {row[LeRobotFeatures.FrameIndex]}, expected {i}."));
            var timestamp = Convert.ToDouble(row[LeRobotFeatures.Timestamp], CultureInfo.InvariantCulture);
            var firstTimestamp = Convert.ToDouble(rows[0][LeRobotFeatures.Timestamp], CultureInfo.InvariantCulture);
            if (Math.Abs(timestamp - firstTimestamp - i / Info.Fps) > 1e-4)
                issues.Add(new(file, $"{At()}: timestamp {timestamp:0.######} does not match frame {i} at {Info.Fps} fps (tolerance 1e-4 s)."));
            if (Long(row[LeRobotFeatures.TaskIndex]) is var task && (task < 0 || task >= taskCount))
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

    public static void CheckImages(string file, LeRobotFeature camera, IList<Dictionary<string, object>> rows, List<DatasetIssue> issues)
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

    public static void CheckTotals(LeRobotInfo info, IReadOnlyList<string> tasks, IReadOnlyList<EpisodeInfo> episodes, List<DatasetIssue> issues)
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

    public static void CheckExpectations(LeRobotInfo info, DatasetExpectations expected, List<DatasetIssue> issues)
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

    public static int CountSpatialAnnotations(string root, List<DatasetIssue> issues)
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
}
