using System.Text.Json;
using System.Text.Json.Serialization;

namespace VlaCloud.Datasets;

/// <summary>One feature of a LeRobot dataset as declared in <c>meta/info.json</c>.</summary>
/// <param name="Name">Column or video key, e.g. <c>observation.state</c>.</param>
/// <param name="Dtype"><c>float32</c>, <c>float64</c>, <c>int64</c>, <c>bool</c>, <c>string</c>, <c>image</c> or <c>video</c>.</param>
/// <param name="Shape">Declared shape; images and videos are (height, width, channels).</param>
/// <param name="Names">Optional names of the dimensions.</param>
public sealed record LeRobotFeature(string Name, string Dtype, int[] Shape, IReadOnlyList<string>? Names)
{
    /// <summary>Whether frames of this feature live in mp4 files rather than in parquet.</summary>
    public bool IsVideo => Dtype == "video";

    /// <summary>Whether this feature is a camera (image or video).</summary>
    public bool IsCamera => Dtype is "image" or "video";

    /// <summary>Number of scalars per frame for numeric features.</summary>
    public int Width => Shape.Aggregate(1, (a, b) => a * b);

    /// <summary>Image height of a camera feature (shape is HWC, or CHW when the first dim is 3).</summary>
    public int ImageHeight => Shape.Length == 3 && Shape[0] == 3 && Shape[2] != 3 ? Shape[1] : Shape[0];

    /// <summary>Image width of a camera feature.</summary>
    public int ImageWidth => Shape.Length == 3 && Shape[0] == 3 && Shape[2] != 3 ? Shape[2] : Shape[1];
}

/// <summary>The parts of <c>meta/info.json</c> VlaCloud reads.</summary>
public sealed record LeRobotInfo(
    string CodebaseVersion,
    double Fps,
    int TotalEpisodes,
    int TotalFrames,
    int TotalTasks,
    int ChunksSize,
    string DataPath,
    string? VideoPath,
    IReadOnlyDictionary<string, LeRobotFeature> Features)
{
    /// <summary>Columns every LeRobot frame has.</summary>
    public static readonly IReadOnlyList<string> IndexColumns = LeRobotFeatures.IndexColumns;

    /// <summary>Whether the layout is v3.0 (many episodes per file).</summary>
    public bool IsV3 => CodebaseVersion.StartsWith("v3", StringComparison.Ordinal);

    /// <summary>Camera features (image or video), in declaration order.</summary>
    public IEnumerable<LeRobotFeature> Cameras => Features.Values.Where(f => f.IsCamera);

    /// <summary>Parses info.json; errors go to <paramref name="issues"/> and null is returned when it is unusable.</summary>
    public static LeRobotInfo? Parse(string json, ICollection<DatasetIssue> issues)
    {
        const string file = "meta/info.json";
        JsonElement root;
        try
        {
            root = JsonDocument.Parse(json).RootElement;
        }
        catch (JsonException e)
        {
            issues.Add(new(file, $"is not valid JSON: {e.Message}"));
            return null;
        }
        if (root.ValueKind != JsonValueKind.Object)
        {
            issues.Add(new(file, "must be a JSON object."));
            return null;
        }

        var version = String(root, "codebase_version");
        if (version is null || !SupportedVersions.Contains(version))
            issues.Add(new(file, $"codebase_version is '{version ?? "(missing)"}'; supported: {string.Join(", ", SupportedVersions)}."));
        var fps = Number(root, "fps");
        if (fps is not > 0) issues.Add(new(file, "fps must be a positive number."));
        var dataPath = String(root, "data_path");
        if (string.IsNullOrEmpty(dataPath)) issues.Add(new(file, "data_path is missing."));
        else if (DatasetPaths.CheckTemplate(dataPath) is { } badData)
        {
            issues.Add(new(file, $"data_path {badData}"));
            dataPath = null;
        }

        var features = new Dictionary<string, LeRobotFeature>(StringComparer.Ordinal);
        if (!root.TryGetProperty("features", out var featuresJson) || featuresJson.ValueKind != JsonValueKind.Object)
        {
            issues.Add(new(file, "features is missing or not an object."));
        }
        else
        {
            foreach (var property in featuresJson.EnumerateObject())
            {
                // Feature names become path segments (video_key) and column names: a name that is not a plain segment is refused.
                if (DatasetPaths.CheckSegment(property.Name) is { } badName)
                {
                    issues.Add(new(file, $"feature name '{Clip(property.Name)}' {badName}"));
                    continue;
                }
                var dtype = String(property.Value, "dtype");
                int[]? shape = null;
                if (property.Value.TryGetProperty("shape", out var shapeJson) && shapeJson.ValueKind == JsonValueKind.Array)
                    shape = shapeJson.EnumerateArray().Select(d => d.TryGetInt32(out var v) ? v : -1).ToArray();
                if (dtype is null || !KnownDtypes.Contains(dtype))
                {
                    issues.Add(new(file, $"feature '{property.Name}' has dtype '{dtype ?? "(missing)"}'; known: {string.Join(", ", KnownDtypes)}."));
                    continue;
                }
                if (shape is null || shape.Any(d => d <= 0))
                {
                    issues.Add(new(file, $"feature '{property.Name}' needs a shape of positive integers."));
                    continue;
                }
                if (dtype is "image" or "video" && shape.Length != 3)
                {
                    issues.Add(new(file, $"feature '{property.Name}' is a camera and needs a 3-dimensional shape, got [{string.Join(", ", shape)}]."));
                    continue;
                }
                var feature = new LeRobotFeature(property.Name, dtype, shape, Names(property.Value));
                if (feature.IsCamera && shape.Any(d => d > ImageLimits.MaxSide))
                {
                    issues.Add(new(file, $"camera '{property.Name}' has shape [{string.Join(", ", shape)}]; images are limited to {ImageLimits.MaxSide} pixels per side."));
                    continue;
                }
                if (!feature.IsCamera && shape.Aggregate(1L, (a, b) => a * b) > MaxFeatureWidth)
                {
                    issues.Add(new(file, $"feature '{property.Name}' has shape [{string.Join(", ", shape)}]; at most {MaxFeatureWidth} values per frame are accepted."));
                    continue;
                }
                features[property.Name] = feature;
            }
            foreach (var column in IndexColumns.Where(c => !features.ContainsKey(c)))
                issues.Add(new(file, $"features lacks the required column '{column}'."));
        }

        var videoPath = String(root, "video_path");
        if (features.Values.Any(f => f.IsVideo) && string.IsNullOrEmpty(videoPath))
            issues.Add(new(file, "declares video features but no video_path."));
        else if (!string.IsNullOrEmpty(videoPath) && DatasetPaths.CheckTemplate(videoPath) is { } badVideo)
        {
            issues.Add(new(file, $"video_path {badVideo}"));
            videoPath = null;
        }

        if (version is null || fps is not > 0 || string.IsNullOrEmpty(dataPath)) return null;
        if (features.Values.Any(f => f.IsVideo) && string.IsNullOrEmpty(videoPath)) return null;
        return new LeRobotInfo(
            version, fps.Value,
            (int)(Number(root, "total_episodes") ?? 0),
            (int)(Number(root, "total_frames") ?? 0),
            (int)(Number(root, "total_tasks") ?? 0),
            (int)(Number(root, "chunks_size") ?? 1000),
            dataPath, videoPath, features);
    }

    /// <summary>Most values per frame of a numeric feature (LeRobot's largest robots have a few hundred).</summary>
    public const int MaxFeatureWidth = 1 << 16;

    /// <summary>Codebase versions this reader understands.</summary>
    public static readonly IReadOnlyList<string> SupportedVersions = ["v2.0", "v2.1", "v3.0"];

    private static readonly string[] KnownDtypes = ["float32", "float64", "int64", "int32", "bool", "string", "image", "video"];

    private static string Clip(string text) => text.Length <= 64 ? text : text[..64] + "…";

    private static string? String(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static double? Number(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;

    private static IReadOnlyList<string>? Names(JsonElement feature)
    {
        if (!feature.TryGetProperty("names", out var names)) return null;
        return names.ValueKind switch
        {
            JsonValueKind.Array => names.EnumerateArray().Select(n => n.ValueKind == JsonValueKind.String ? n.GetString()! : n.ToString()).ToList(),
            // v2.x sometimes nests names under a key such as {"motors": [...]}.
            JsonValueKind.Object => names.EnumerateObject().FirstOrDefault().Value is { ValueKind: JsonValueKind.Array } inner
                ? inner.EnumerateArray().Select(n => n.ToString()).ToList()
                : null,
            _ => null,
        };
    }

    /// <summary>Expands a LeRobot path template such as <c>data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet</c>.</summary>
    /// <exception cref="InvalidDataException">A placeholder asks for more than <see cref="DatasetPaths.MaxFormatWidth"/> digits.</exception>
    public static string FormatPath(string template, IReadOnlyDictionary<string, object> values) =>
        DatasetPaths.Placeholder.Replace(template, match =>
        {
            var name = match.Groups["name"].Value;
            if (!values.TryGetValue(name, out var value)) return match.Value;
            if (!match.Groups["width"].Success) return value.ToString()!;
            // The width comes from the dataset: {episode_index:0999999999d} would otherwise be a 2 GB string.
            var digits = DatasetPaths.Width(match) ?? throw new InvalidDataException($"'{match.Value}' asks for more than {DatasetPaths.MaxFormatWidth} digits.");
            return Convert.ToInt64(value).ToString(new string('0', Math.Max(1, digits)), System.Globalization.CultureInfo.InvariantCulture);
        });
}

/// <summary>One problem found in a dataset, with the file it concerns (relative to the dataset root).</summary>
/// <param name="File">The file, e.g. <c>data/chunk-000/episode_000003.parquet</c>.</param>
/// <param name="Message">What is wrong, precisely.</param>
public sealed record DatasetIssue(string File, string Message)
{
    /// <inheritdoc />
    public override string ToString() => $"{File}: {Message}";
}
