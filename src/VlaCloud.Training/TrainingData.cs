using System.Text.Json;
using VlaCloud.Datasets;
using VlaCloud.Policy;

namespace VlaCloud.Training;

/// <summary>One demonstration episode held in memory: an observation per frame and the action taken there.</summary>
/// <param name="Index">Episode index in its dataset.</param>
/// <param name="Observations">Per frame: decoded camera images, state, instruction, embodiment.</param>
/// <param name="Actions">Per frame: the action in embodiment units.</param>
/// <param name="Guides">Per frame: the labelled target and destination from the spatial annotations (null where a frame has none),
/// or null when the dataset has no annotations; what a point-guided policy is teacher-forced with.</param>
public sealed record DemonstrationEpisode(int Index, IReadOnlyList<Observation> Observations, IReadOnlyList<float[]> Actions, IReadOnlyList<PointGuide?>? Guides = null)
{
    /// <summary>Frames in the episode.</summary>
    public int Length => Actions.Count;
}

/// <summary>
/// One frame's spatial labels (main-camera pixels) with its images: the source of point, box and
/// trajectory questions.
/// </summary>
/// <param name="Images">The frame's camera images, main camera first (the coordinates' frame).</param>
/// <param name="Instruction">The task the labels are about.</param>
/// <param name="Point">The target object's centre pixel <c>[x, y]</c>.</param>
/// <param name="Box">The target object's box <c>[x1, y1, x2, y2]</c>.</param>
/// <param name="Trajectory">The future end-effector path as x,y pairs.</param>
/// <param name="Source">Which dataset it came from (a folder name), for reports.</param>
/// <param name="Placement">The destination's centre pixel <c>[x, y]</c>, or null when the annotation names none.</param>
public sealed record SpatialRecord(IReadOnlyList<CameraImage> Images, string Instruction, float[] Point, float[] Box, float[] Trajectory, string Source, float[]? Placement = null);

/// <summary>How datasets are turned into training data.</summary>
/// <param name="Embodiment">Name the normalisation statistics are stored under (e.g. <c>sim-tabletop</c>).</param>
/// <param name="BinaryActionDims">Action dims that are 0/1 (a gripper), kept binary by the normalisation.</param>
/// <param name="Cameras">Camera feature names in the model's input order; null: the dataset's order with <c>main</c> first.</param>
/// <param name="SpatialFromActionData">Whether the action dataset's own spatial annotations join the spatial pool.</param>
public sealed record TrainingDataOptions(
    string Embodiment,
    IReadOnlyList<int>? BinaryActionDims = null,
    IReadOnlyList<string>? Cameras = null,
    bool SpatialFromActionData = true);

/// <summary>
/// Everything a co-training run reads, decoded once into memory so the training step never touches
/// disk or decodes images: demonstration episodes, spatial records (from the action dataset's
/// <c>meta/spatial_annotations.jsonl</c> and from separate grounding datasets) and the normalisation
/// statistics (q01/q99 of the action dataset) for the embodiment.
/// </summary>
public sealed class TrainingData
{
    /// <summary>Builds training data from parts already in memory.</summary>
    public TrainingData(string embodiment, NormalizationStats normalization, IReadOnlyList<DemonstrationEpisode> episodes, IReadOnlyList<SpatialRecord> spatial)
    {
        if (episodes.Count == 0 || episodes.Any(e => e.Length == 0)) throw new ArgumentException("training needs at least one non-empty demonstration episode");
        Embodiment = embodiment;
        Normalization = normalization;
        Episodes = episodes;
        Spatial = spatial;
        Frames = episodes.Sum(e => e.Length);
    }

    /// <summary>The embodiment the statistics belong to.</summary>
    public string Embodiment { get; }
    /// <summary>Statistics of the action dataset, stored into the policy before training.</summary>
    public NormalizationStats Normalization { get; }
    /// <summary>Demonstrations for the action loss.</summary>
    public IReadOnlyList<DemonstrationEpisode> Episodes { get; }
    /// <summary>Spatial grounding records.</summary>
    public IReadOnlyList<SpatialRecord> Spatial { get; }
    /// <summary>Demonstration frames.</summary>
    public int Frames { get; }

    /// <summary>The same demonstrations without any spatial records (the vanilla baseline's data).</summary>
    public TrainingData WithoutSpatial() => new(Embodiment, Normalization, Episodes, []);

    /// <summary>
    /// Loads a LeRobot dataset of demonstrations (validated by <see cref="LeRobotDataset.InspectAsync"/>)
    /// and any number of grounding datasets (LeRobot datasets whose spatial annotations are used, not
    /// their actions). Throws <see cref="InvalidDataException"/> listing the issues of an invalid dataset.
    /// </summary>
    public static async Task<TrainingData> LoadAsync(
        string actionDataset,
        IEnumerable<string> groundingDatasets,
        TrainingDataOptions options,
        CancellationToken cancellationToken = default)
    {
        var inspection = await InspectAsync(actionDataset, cancellationToken);
        var stats = inspection.Statistics!;
        var normalization = new NormalizationStats(
            ToFeatureStats(stats.Action),
            stats.State is null ? null : ToFeatureStats(stats.State),
            NormalizationMode.Q99,
            options.BinaryActionDims?.ToArray());

        var (episodes, spatial) = await ReadAsync(inspection.Dataset!, options, withActions: true, options.SpatialFromActionData, cancellationToken);
        var all = new List<SpatialRecord>(spatial);
        foreach (var folder in groundingDatasets)
        {
            var grounding = await InspectAsync(folder, cancellationToken);
            var (_, records) = await ReadAsync(grounding.Dataset!, options, withActions: false, withSpatial: true, cancellationToken);
            if (records.Count == 0) throw new InvalidDataException($"{folder}: the grounding dataset has no {LeRobotDataset.SpatialAnnotationsFile}");
            all.AddRange(records);
        }
        return new TrainingData(options.Embodiment, normalization, episodes, all);
    }

    private static async Task<DatasetInspection> InspectAsync(string folder, CancellationToken cancellationToken)
    {
        var inspection = await LeRobotDataset.InspectAsync(folder, null, cancellationToken);
        if (!inspection.IsValid)
            throw new InvalidDataException($"{folder} is not a valid LeRobot dataset: {string.Join("; ", inspection.Issues.Take(5))}");
        return inspection;
    }

    private static async Task<(List<DemonstrationEpisode> Episodes, List<SpatialRecord> Spatial)> ReadAsync(
        LeRobotDataset dataset, TrainingDataOptions options, bool withActions, bool withSpatial, CancellationToken cancellationToken)
    {
        var cameras = options.Cameras ?? [.. dataset.Info.Cameras.Select(c => c.Name).OrderBy(n => n.EndsWith(".main", StringComparison.Ordinal) ? 0 : 1)];
        var labels = ReadAnnotations(dataset.Root);
        var source = Path.GetFileName(Path.TrimEndingDirectorySeparator(dataset.Root));
        var episodes = new List<DemonstrationEpisode>();
        var spatial = new List<SpatialRecord>();
        foreach (var info in dataset.Episodes)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!withActions && !labels.ContainsKey((info.Index, 0))) continue;
            var data = await dataset.ReadEpisodeAsync(info, includeImages: true, cancellationToken);
            var observations = new Observation[info.Length];
            var guides = new PointGuide?[info.Length];
            for (var t = 0; t < info.Length; t++)
            {
                var images = cameras.Select(c => data.Images.TryGetValue(c, out var frames)
                    ? new CameraImage(frames[t].Pixels, frames[t].Width, frames[t].Height)
                    : throw new InvalidDataException($"{info.DataFile}: camera '{c}' is missing")).ToArray();
                var instruction = dataset.Tasks[data.TaskIndices[t]];
                observations[t] = new Observation(images, instruction, data.States[t].Length > 0 ? data.States[t] : null, options.Embodiment);
                if (!labels.TryGetValue((info.Index, t), out var label)) continue;
                guides[t] = new PointGuide(label.Point, label.Placement);
                if (withSpatial) spatial.Add(label with { Images = images, Instruction = instruction, Source = source });
            }
            if (withActions) episodes.Add(new DemonstrationEpisode(info.Index, observations, data.Actions, labels.Count > 0 ? guides : null));
        }
        return (episodes, spatial);
    }

    /// <summary>The annotation lines by (episode, frame); images and instruction are filled in later.</summary>
    private static Dictionary<(int Episode, int Frame), SpatialRecord> ReadAnnotations(string root)
    {
        var result = new Dictionary<(int, int), SpatialRecord>();
        var path = Path.Combine(root, LeRobotDataset.SpatialAnnotationsFile);
        if (!File.Exists(path)) return result;
        foreach (var line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            using var doc = JsonDocument.Parse(line);
            var e = doc.RootElement;
            var target = e.GetProperty("target");
            var trajectory = e.GetProperty("trajectory").EnumerateArray().SelectMany(p => p.EnumerateArray().Select(v => v.GetSingle())).ToArray();
            result[(e.GetProperty("episode_index").GetInt32(), e.GetProperty("frame_index").GetInt32())] = new SpatialRecord(
                [], e.GetProperty("instruction").GetString() ?? "",
                Floats(target.GetProperty("point")), Floats(target.GetProperty("box")), trajectory, "",
                e.TryGetProperty("destination", out var destination) && destination.ValueKind == JsonValueKind.Object ? Floats(destination.GetProperty("point")) : null);
        }
        return result;

        static float[] Floats(JsonElement array) => [.. array.EnumerateArray().Select(v => v.GetSingle())];
    }

    private static FeatureStats ToFeatureStats(FeatureStatistics s) => new(
        [.. s.Mean.Select(v => (float)v)], [.. s.Std.Select(v => (float)v)], [.. s.Q01.Select(v => (float)v)], [.. s.Q99.Select(v => (float)v)]);
}
