using System.Collections;
using System.Globalization;
using static VlaCloud.Datasets.LeRobotFiles;

namespace VlaCloud.Datasets;

/// <summary>The v3.0 metadata layout: <c>meta/tasks.parquet</c> and <c>meta/episodes/</c> parquet files, many episodes per data file.</summary>
internal static class LeRobotLayoutV3
{
    internal static async Task<List<string>> ReadTasksV3Async(string root, List<DatasetIssue> issues, CancellationToken cancellationToken)
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

    internal static async Task<List<EpisodeInfo>> ReadEpisodesV3Async(string root, LeRobotInfo info, List<DatasetIssue> issues, CancellationToken cancellationToken)
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
}
