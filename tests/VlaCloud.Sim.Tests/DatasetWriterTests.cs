using System.Text.Json;
using Parquet;
using Parquet.Schema;
using VlaCloud.Datasets;
using VlaCloud.Sim;

namespace VlaCloud.Sim.Tests;

public sealed class DatasetWriterTests : IAsyncLifetime
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"vlacloud-sim-{Guid.NewGuid():N}");
    private DatasetSummary _summary = null!;

    public async Task InitializeAsync() =>
        _summary = await DatasetGenerator.GenerateAsync(_root, new DatasetOptions(6, SimSplits.Train, [TaskKind.PickPlace, TaskKind.Push]));

    public Task DisposeAsync()
    {
        Directory.Delete(_root, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public void The_dataset_has_the_lerobot_v21_layout()
    {
        foreach (var file in new[] { "info.json", "episodes.jsonl", "tasks.jsonl", "episodes_stats.jsonl", "spatial_annotations.jsonl", "modality.json", "sim_splits.json" })
            Assert.True(File.Exists(Path.Combine(_root, "meta", file)), $"meta/{file} is missing");
        for (var e = 0; e < 6; e++)
            Assert.True(File.Exists(Path.Combine(_root, "data", "chunk-000", $"episode_{e:000000}.parquet")));

        using var info = JsonDocument.Parse(File.ReadAllText(Path.Combine(_root, "meta", "info.json")));
        var root = info.RootElement;
        Assert.Equal("v2.1", root.GetProperty("codebase_version").GetString());
        Assert.Equal(10, root.GetProperty("fps").GetDouble());
        Assert.Equal(6, root.GetProperty("total_episodes").GetInt32());
        Assert.Equal(_summary.Frames, root.GetProperty("total_frames").GetInt32());
        Assert.Equal("data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet", root.GetProperty("data_path").GetString());
        var features = root.GetProperty("features");
        Assert.Equal("image", features.GetProperty("observation.images.main").GetProperty("dtype").GetString());
        Assert.Equal([64, 64, 3], features.GetProperty("observation.images.wrist").GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal([3], features.GetProperty("action").GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()));

        var episodes = File.ReadAllLines(Path.Combine(_root, "meta", "episodes.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal(6, episodes.Length);
        Assert.Equal(_summary.Frames, episodes.Sum(e => e.GetProperty("length").GetInt32()));
        var tasks = File.ReadAllLines(Path.Combine(_root, "meta", "tasks.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.All(episodes, e => Assert.Contains(tasks, t => t.GetProperty("task").GetString() == e.GetProperty("tasks")[0].GetString()));
        var stats = File.ReadAllLines(Path.Combine(_root, "meta", "episodes_stats.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal(6, stats.Length);
        Assert.Equal(3, stats[0].GetProperty("stats").GetProperty("observation.images.main").GetProperty("mean").GetArrayLength());
    }

    [Fact]
    public async Task Each_episode_file_has_the_lerobot_columns_and_one_row_per_frame()
    {
        var episodes = File.ReadAllLines(Path.Combine(_root, "meta", "episodes.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        long expectedIndex = 0;
        for (var e = 0; e < episodes.Length; e++)
        {
            var file = Path.Combine(_root, LeRobotWriter.EpisodePath(e));
            ParquetSchema schema;
            await using (var stream = File.OpenRead(file))
            await using (var reader = await ParquetReader.CreateAsync(stream))
                schema = reader.Schema;
            Assert.Equal(
                ["observation.images.main", "observation.images.wrist", "observation.state", "action", "timestamp", "frame_index", "episode_index", "index", "task_index"],
                schema.Fields.Select(f => f.Name));
            var image = Assert.IsType<StructField>(schema.Fields[0]);
            Assert.Equal(["bytes", "path"], image.Fields.Select(f => f.Name));
            Assert.IsType<ListField>(schema.Fields[2]);
            Assert.IsType<ListField>(schema.Fields[3]);

            var length = episodes[e].GetProperty("length").GetInt32();
            IList<Dictionary<string, object>> rows;
            await using (var stream = File.OpenRead(file))
                rows = (await Parquet.Serialization.ParquetSerializer.DeserializeUntypedAsync(stream)).Data;
            Assert.Equal(length, rows.Count);
            for (var i = 0; i < length; i++)
            {
                var row = rows[i];
                Assert.Equal((long)i, Convert.ToInt64(row["frame_index"]));
                Assert.Equal(expectedIndex + i, Convert.ToInt64(row["index"]));
                Assert.Equal((long)e, Convert.ToInt64(row["episode_index"]));
                Assert.Equal(i / 10.0, Convert.ToDouble(row["timestamp"]), 1e-4);
                Assert.Equal(3, ((System.Collections.IEnumerable)row["observation.state"]).Cast<object>().Count());
                Assert.Equal(3, ((System.Collections.IEnumerable)row["action"]).Cast<object>().Count());
            }
            var cell = (IDictionary<string, object>)rows[0]["observation.images.main"];
            var decoded = RgbImage.Decode((byte[])cell["bytes"]);
            Assert.NotNull(decoded);
            Assert.Equal((64, 64, 64 * 64 * 3), (decoded.Width, decoded.Height, decoded.Pixels.Length));
            expectedIndex += length;
        }
    }

    [Fact]
    public async Task The_projects_dataset_reader_accepts_the_dataset_with_its_annotations()
    {
        var inspection = await VlaCloud.Datasets.LeRobotDataset.InspectAsync(_root, null, CancellationToken.None);

        Assert.True(inspection.IsValid, string.Join("; ", inspection.Issues));
        Assert.Equal(6, inspection.Dataset!.Episodes.Count);
        Assert.Equal(_summary.Frames, inspection.Dataset.TotalFrames);
        Assert.Equal(_summary.Frames, inspection.SpatialAnnotationCount);
    }

    [Fact]
    public void The_spatial_annotations_have_one_line_per_frame_in_image_bounds()
    {
        var lines = File.ReadAllLines(Path.Combine(_root, "meta", "spatial_annotations.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal(_summary.Frames, lines.Length);
        Assert.Equal(Enumerable.Range(0, lines.Length), lines.Select(l => l.GetProperty("index").GetInt32()));
        foreach (var line in lines)
        {
            foreach (var key in new[] { "target", "destination" })
            {
                var box = line.GetProperty(key).GetProperty("box").EnumerateArray().Select(x => x.GetInt32()).ToArray();
                var point = line.GetProperty(key).GetProperty("point").EnumerateArray().Select(x => x.GetInt32()).ToArray();
                Assert.True(box[0] <= point[0] && point[0] < box[2] && box[1] <= point[1] && point[1] < box[3]);
                Assert.All(box, v => Assert.InRange(v, 0, 64));
            }
            Assert.InRange(line.GetProperty("trajectory").GetArrayLength(), 1, SpatialLabels.TrajectoryPoints);
        }
    }

    [Fact]
    public async Task Grounding_stills_keep_each_episodes_first_frame_with_the_whole_rollouts_trajectory()
    {
        var root = Path.Combine(Path.GetTempPath(), $"vlacloud-stills-{Guid.NewGuid():N}");
        try
        {
            var full = await DatasetGenerator.GenerateAsync(Path.Combine(root, "full"), new DatasetOptions(4, SimSplits.Grounding, [TaskKind.PickPlace]));
            var stills = await DatasetGenerator.GenerateAsync(Path.Combine(root, "stills"), new DatasetOptions(4, SimSplits.Grounding, [TaskKind.PickPlace], FramesPerEpisode: 1));

            Assert.Equal((4, 4), (stills.Episodes, stills.Frames));
            Assert.True(full.Frames > 4 * 2, $"{full.Frames} frames in 4 full episodes");
            var inspection = await VlaCloud.Datasets.LeRobotDataset.InspectAsync(Path.Combine(root, "stills"), null, CancellationToken.None);
            Assert.True(inspection.IsValid, string.Join("; ", inspection.Issues));
            Assert.Equal(4, inspection.SpatialAnnotationCount);

            // The same scenes: each still's labels are the full episode's first frame's, trajectory included.
            string FirstFrames(string name) => string.Join("\n", File.ReadLines(Path.Combine(root, name, "meta", "spatial_annotations.jsonl"))
                .Select(l => JsonDocument.Parse(l).RootElement).Where(l => l.GetProperty("frame_index").GetInt32() == 0)
                .Select(l => l.GetProperty("target").GetRawText() + l.GetProperty("trajectory").GetRawText()));
            Assert.Equal(FirstFrames("full"), FirstFrames("stills"));
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task Zero_frames_per_episode_and_impossible_noise_are_refused_before_anything_is_written()
    {
        var root = Path.Combine(Path.GetTempPath(), $"vlacloud-stills-{Guid.NewGuid():N}");
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            DatasetGenerator.GenerateAsync(root, new DatasetOptions(1, SimSplits.Grounding, [TaskKind.Push], FramesPerEpisode: 0)));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            DatasetGenerator.GenerateAsync(root, new DatasetOptions(1, SimSplits.Train, [TaskKind.Push], Noise: new ExpertNoise(-0.01, 0))));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            DatasetGenerator.GenerateAsync(root, new DatasetOptions(1, SimSplits.Train, [TaskKind.Push], Noise: new ExpertNoise(0.01, 1.5))));
        Assert.False(Directory.Exists(root));
    }
}
