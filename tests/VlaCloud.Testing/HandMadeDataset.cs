using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Parquet.Serialization;
using SkiaSharp;

namespace VlaCloud.Testing;

/// <summary>
/// Writes small LeRobot datasets by hand, in the layouts LeRobot itself writes (v2.1: a parquet file per
/// episode; v3.0: one data file, episode metadata in parquet, one mp4 per camera), so the reader is tested
/// against the format rather than against our own writer. Each test then breaks one thing. Shared by the dataset
/// tests and the host's (which upload one as an archive).
/// </summary>
public sealed class HandMadeDataset : IDisposable
{
    public const int Fps = 10;
    public const int ImageSize = 16;
    public static readonly string[] TaskTexts = ["pick the red cube", "push the blue ball"];

    /// <param name="version">The layout: <c>v2.1</c> or <c>v3.0</c>.</param>
    /// <param name="episodes">How many episodes.</param>
    /// <param name="length">Frames per episode.</param>
    /// <param name="video">Cameras as mp4 videos rather than images in the parquet files.</param>
    /// <param name="imageOf">The encoded image of (episode, frame) in place of the usual PNG, or null to keep that one.</param>
    public HandMadeDataset(string version = "v2.1", int episodes = 3, int length = 5, bool video = false, Func<int, int, byte[]?>? imageOf = null)
    {
        Root = Directory.CreateTempSubdirectory("lerobot-").FullName;
        Version = version;
        Lengths = Enumerable.Repeat(length, episodes).ToArray();
        Video = video;
        this.imageOf = imageOf ?? ((_, _) => null);
        Write();
    }

    private readonly Func<int, int, byte[]?> imageOf;

    public string Root { get; }
    public string Version { get; }
    public int[] Lengths { get; }
    public bool Video { get; }

    public string PathOf(string relative) => System.IO.Path.Combine(Root, relative);

    public JsonObject ReadInfo() => JsonNode.Parse(File.ReadAllText(PathOf("meta/info.json")))!.AsObject();

    public void WriteInfo(JsonObject info) => File.WriteAllText(PathOf("meta/info.json"), info.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

    /// <summary>The action a frame carries: easy to check in statistics.</summary>
    public static float[] ActionOf(int episode, int frame) => [episode, frame, 0.5f * frame, frame % 2];

    public static float[] StateOf(int episode, int frame) => [frame, -episode];

    public void Dispose() => Directory.Delete(Root, recursive: true);

    private void Write()
    {
        Directory.CreateDirectory(PathOf("meta"));
        var camera = new JsonObject { ["dtype"] = Video ? "video" : "image", ["shape"] = new JsonArray(ImageSize, ImageSize, 3), ["names"] = new JsonArray("height", "width", "channels") };
        var info = new JsonObject
        {
            ["codebase_version"] = Version,
            ["robot_type"] = "test-arm",
            ["fps"] = Fps,
            ["total_episodes"] = Lengths.Length,
            ["total_frames"] = Lengths.Sum(),
            ["total_tasks"] = TaskTexts.Length,
            ["chunks_size"] = 1000,
            ["data_path"] = Version == "v3.0" ? "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet" : "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
            ["video_path"] = Video
                ? Version == "v3.0" ? "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4" : "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
                : null,
            ["features"] = new JsonObject
            {
                ["observation.state"] = new JsonObject { ["dtype"] = "float32", ["shape"] = new JsonArray(2), ["names"] = new JsonArray("x", "y") },
                ["action"] = new JsonObject { ["dtype"] = "float32", ["shape"] = new JsonArray(4), ["names"] = new JsonArray("dx", "dy", "dz", "gripper") },
                ["observation.images.front"] = camera,
                ["timestamp"] = new JsonObject { ["dtype"] = "float32", ["shape"] = new JsonArray(1) },
                ["frame_index"] = new JsonObject { ["dtype"] = "int64", ["shape"] = new JsonArray(1) },
                ["episode_index"] = new JsonObject { ["dtype"] = "int64", ["shape"] = new JsonArray(1) },
                ["index"] = new JsonObject { ["dtype"] = "int64", ["shape"] = new JsonArray(1) },
                ["task_index"] = new JsonObject { ["dtype"] = "int64", ["shape"] = new JsonArray(1) },
            },
        };
        WriteInfo(info);
        if (Version == "v3.0") WriteV3(); else WriteV2();
    }

    private void WriteV2()
    {
        File.WriteAllLines(PathOf("meta/tasks.jsonl"), TaskTexts.Select((t, i) => JsonSerializer.Serialize(new { task_index = i, task = t })));
        File.WriteAllLines(PathOf("meta/episodes.jsonl"), Lengths.Select((n, e) => JsonSerializer.Serialize(new { episode_index = e, tasks = new[] { TaskTexts[e % 2] }, length = n })));
        var index = 0L;
        for (var e = 0; e < Lengths.Length; e++)
        {
            var rows = Frames(e, ref index);
            var file = PathOf($"data/chunk-000/episode_{e:000000}.parquet");
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(file)!);
            ParquetSerializer.SerializeAsync(rows, file).GetAwaiter().GetResult();
            if (Video) EncodeVideo(PathOf($"videos/chunk-000/observation.images.front/episode_{e:000000}.mp4"), Lengths[e], e);
        }
    }

    private void WriteV3()
    {
        var index = 0L;
        var all = new List<Frame>();
        for (var e = 0; e < Lengths.Length; e++) all.AddRange(Frames(e, ref index));
        Directory.CreateDirectory(PathOf("data/chunk-000"));
        ParquetSerializer.SerializeAsync(all, PathOf("data/chunk-000/file-000.parquet")).GetAwaiter().GetResult();
        ParquetSerializer.SerializeAsync(TaskTexts.Select((t, i) => new TaskRow { Task = t, TaskIndex = i }), PathOf("meta/tasks.parquet")).GetAwaiter().GetResult();
        Directory.CreateDirectory(PathOf("meta/episodes/chunk-000"));
        var from = 0.0;
        var episodes = new List<EpisodeRow>();
        for (var e = 0; e < Lengths.Length; e++)
        {
            episodes.Add(new EpisodeRow { EpisodeIndex = e, Length = Lengths[e], Tasks = [TaskTexts[e % 2]], FromTimestamp = from });
            from += (double)Lengths[e] / Fps;
        }
        ParquetSerializer.SerializeAsync(episodes, PathOf("meta/episodes/chunk-000/file-000.parquet")).GetAwaiter().GetResult();
        if (Video) EncodeVideo(PathOf("videos/observation.images.front/chunk-000/file-000.mp4"), Lengths.Sum(), 0);
    }

    private List<Frame> Frames(int episode, ref long index)
    {
        var rows = new List<Frame>();
        for (var f = 0; f < Lengths[episode]; f++)
        {
            rows.Add(new Frame
            {
                State = StateOf(episode, f),
                Action = ActionOf(episode, f),
                Image = Video ? null : new ImageCell { Bytes = imageOf(episode, f) ?? Png(episode, f), Path = $"frame_{index:000000}.png" },
                Timestamp = (float)f / Fps,
                FrameIndex = f,
                EpisodeIndex = episode,
                Index = index++,
                TaskIndex = episode % 2,
            });
        }
        return rows;
    }

    public static byte[] Png(int episode, int frame, int size = ImageSize)
    {
        using var bitmap = new SKBitmap(size, size, SKColorType.Rgba8888, SKAlphaType.Premul);
        bitmap.Erase(new SKColor((byte)(40 * episode), (byte)(20 * frame), 200));
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    private static void EncodeVideo(string path, int frames, int shade)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        var start = new ProcessStartInfo("ffmpeg") { RedirectStandardInput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", $"{ImageSize}x{ImageSize}", "-r", $"{Fps}", "-i", "-",
                     "-c:v", "mpeg4", "-q:v", "2", "-pix_fmt", "yuv420p", path })
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var frame = new byte[ImageSize * ImageSize * 3];
        for (var f = 0; f < frames; f++)
        {
            Array.Fill(frame, (byte)(10 * f + shade));
            process.StandardInput.BaseStream.Write(frame);
        }
        process.StandardInput.Close();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"ffmpeg failed: {error}");
    }

    public sealed class Frame
    {
        [JsonPropertyName("observation.state")] public float[] State { get; set; } = [];
        [JsonPropertyName("action")] public float[] Action { get; set; } = [];
        [JsonPropertyName("observation.images.front")] public ImageCell? Image { get; set; }
        [JsonPropertyName("timestamp")] public float Timestamp { get; set; }
        [JsonPropertyName("frame_index")] public long FrameIndex { get; set; }
        [JsonPropertyName("episode_index")] public long EpisodeIndex { get; set; }
        [JsonPropertyName("index")] public long Index { get; set; }
        [JsonPropertyName("task_index")] public long TaskIndex { get; set; }
    }

    public sealed class ImageCell
    {
        [JsonPropertyName("bytes")] public byte[] Bytes { get; set; } = [];
        [JsonPropertyName("path")] public string Path { get; set; } = "";
    }

    private sealed class TaskRow
    {
        [JsonPropertyName("task")] public string Task { get; set; } = "";
        [JsonPropertyName("task_index")] public long TaskIndex { get; set; }
    }

    private sealed class EpisodeRow
    {
        [JsonPropertyName("episode_index")] public long EpisodeIndex { get; set; }
        [JsonPropertyName("length")] public long Length { get; set; }
        [JsonPropertyName("tasks")] public string[] Tasks { get; set; } = [];
        [JsonPropertyName("data/chunk_index")] public long DataChunk { get; set; }
        [JsonPropertyName("data/file_index")] public long DataFile { get; set; }
        [JsonPropertyName("videos/observation.images.front/chunk_index")] public long VideoChunk { get; set; }
        [JsonPropertyName("videos/observation.images.front/file_index")] public long VideoFile { get; set; }
        [JsonPropertyName("videos/observation.images.front/from_timestamp")] public double FromTimestamp { get; set; }
    }
}
