using System.Globalization;
using Parquet.Serialization;
using static VlaCloud.Datasets.LeRobotFiles;
using static VlaCloud.Datasets.LeRobotLayoutV2;
using static VlaCloud.Datasets.LeRobotLayoutV3;

namespace VlaCloud.Datasets;

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

        LeRobotValidator.CheckTotals(info, tasks, episodes, issues);
        if (expectations is not null) LeRobotValidator.CheckExpectations(info, expectations, issues);
        var validator = new LeRobotValidator(dataset);

        var states = new List<float[]>();
        var actions = new List<float[]>();
        foreach (var episode in episodes)
        {
            if (issues.Count >= LeRobotValidator.MaxIssues) break;
            await validator.CheckEpisodeAsync(episode, tasks.Count, issues, states, actions, cancellationToken);
        }
        var spatial = LeRobotValidator.CountSpatialAnnotations(root, issues);
        if (issues.Count > 0 || actions.Count == 0)
        {
            if (actions.Count == 0 && issues.Count == 0) issues.Add(new("meta/episodes", "the dataset has no frames."));
            return new DatasetInspection(issues.Take(LeRobotValidator.MaxIssues).ToList(), dataset, null, spatial);
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
            rows.Select(r => (int)Convert.ToInt64(r[LeRobotFeatures.TaskIndex], CultureInfo.InvariantCulture)).ToArray(),
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

    internal async Task<IList<Dictionary<string, object>>> EpisodeRowsAsync(EpisodeInfo episode, CancellationToken cancellationToken)
    {
        if (!dataFiles.TryGetValue(episode.DataFile, out var rows))
        {
            await using var stream = File.OpenRead(PathOf(episode.DataFile));
            rows = (await ParquetSerializer.DeserializeUntypedAsync(stream, cancellationToken: cancellationToken)).Data;
            // v3.0 files hold many episodes: keep the last one read, episodes come in file order.
            dataFiles.Clear();
            dataFiles[episode.DataFile] = rows;
        }
        return Info.IsV3 ? rows.Where(r => r.TryGetValue(LeRobotFeatures.EpisodeIndex, out var e) && Long(e) == episode.Index).ToList() : rows;
    }

}
