using System.Text.Json;
using static VlaCloud.Datasets.LeRobotFiles;

namespace VlaCloud.Datasets;

/// <summary>The v2.0/v2.1 metadata layout: <c>meta/tasks.jsonl</c> and <c>meta/episodes.jsonl</c>, one parquet file per episode.</summary>
internal static class LeRobotLayoutV2
{
    internal static List<string> ReadTasksV2(string root, List<DatasetIssue> issues)
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

    internal static List<EpisodeInfo> ReadEpisodesV2(string root, LeRobotInfo info, List<DatasetIssue> issues)
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
}
