using System.Collections;
using System.Globalization;
using System.Text.Json;
using Parquet.Serialization;

namespace VlaCloud.Datasets;

/// <summary>Reading a dataset's metadata files (JSON lines, parquet) and cells, with problems reported as issues.</summary>
internal static class LeRobotFiles
{
    public static IEnumerable<(JsonElement Line, int Number)> JsonLines(string root, string file, List<DatasetIssue> issues)
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

    public static async Task<IList<Dictionary<string, object>>> ReadParquetAsync(string root, string file, List<DatasetIssue> issues, CancellationToken cancellationToken)
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

    public static List<T> Dense<T>(SortedDictionary<int, T> byIndex, string file, string key, List<DatasetIssue> issues)
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

    public static int? Int(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.TryGetInt32(out var i) ? i : null;

    public static string? Str(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public static long Long(object? value) => value is null ? -1 : Convert.ToInt64(value, CultureInfo.InvariantCulture);

    /// <summary>A numeric cell as floats: list columns, and scalar columns of shape (1,).</summary>
    public static float[]? ToFloats(object? value) => value switch
    {
        null => null,
        float f => [f],
        double d => [(float)d],
        IEnumerable<float> floats => floats.ToArray(),
        IEnumerable<double> doubles => doubles.Select(d => (float)d).ToArray(),
        IEnumerable list and not string => list.Cast<object?>().Select(v => v is null ? float.NaN : Convert.ToSingle(v, CultureInfo.InvariantCulture)).ToArray(),
        _ => null,
    };

    public static byte[]? ImageBytes(object? cell) =>
        cell is IDictionary<string, object> image && image.TryGetValue("bytes", out var bytes) ? bytes as byte[] : null;
}
