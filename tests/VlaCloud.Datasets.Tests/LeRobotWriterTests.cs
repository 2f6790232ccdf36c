using System.Text.Json.Nodes;
using Parquet.Serialization;

namespace VlaCloud.Datasets.Tests;

/// <summary>The format's writer, read back through the format's reader and validator: what one writes, the other accepts.</summary>
public sealed class LeRobotWriterTests : IDisposable
{
    private const int Width = 12, Height = 8;
    private static readonly string[] TaskTexts = ["stack the cups", "open the drawer"];
    private static readonly LeRobotSchema Schema = new("test-arm", 5, ["x", "y", "gripper"], ["dx", "dy"],
        [new LeRobotCamera("front", Width, Height), new LeRobotCamera("side", Width, Height)]);
    private static readonly DatasetExpectations Expectations = new(ActionDim: 2, StateDim: 3, Cameras: ["front", "side"], Width, Height);

    private readonly string _root = Path.Combine(Path.GetTempPath(), $"lerobot-writer-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    /// <summary>Pixels that differ by camera, episode and frame, so a frame read from the wrong place shows.</summary>
    private static byte[] Pixels(int camera, int episode, int frame)
    {
        var rgb = new byte[Width * Height * 3];
        for (var i = 0; i < rgb.Length; i += 3)
        {
            rgb[i] = (byte)(60 * camera + i % 50);
            rgb[i + 1] = (byte)(30 * episode);
            rgb[i + 2] = (byte)(10 * frame);
        }
        return rgb;
    }

    private static LeRobotEpisode Episode(int episode, int length) => new(
        TaskTexts[episode % 2],
        [.. Enumerable.Range(0, length).Select(f => new LeRobotFrame(
            new Dictionary<string, byte[]> { ["front"] = Pixels(0, episode, f), ["side"] = Pixels(1, episode, f) },
            [f, -episode, f % 2],
            [0.5f * f, episode],
            f % 2 == 0 ? new JsonObject { ["point"] = new JsonArray(f, episode) } : null))],
        new JsonObject { ["seed"] = 100 + episode, ["source"] = "test", ["success"] = episode != 1 });

    private async Task WriteAsync(LeRobotLayout layout, int[] lengths)
    {
        var writer = new LeRobotWriter(_root, Schema, layout);
        for (var e = 0; e < lengths.Length; e++) await writer.AddEpisodeAsync(Episode(e, lengths[e]));
        await writer.CompleteAsync();
        Assert.Equal((lengths.Length, lengths.Sum(), 2), (writer.Episodes, writer.Frames, writer.Tasks));
    }

    [Theory]
    [InlineData(LeRobotLayout.V21, "v2.1")]
    [InlineData(LeRobotLayout.V30, "v3.0")]
    public async Task A_written_dataset_validates_and_every_frame_reads_back_as_written(LeRobotLayout layout, string version)
    {
        int[] lengths = [4, 6, 3];
        await WriteAsync(layout, lengths);

        var inspection = await LeRobotDataset.InspectAsync(_root, Expectations, CancellationToken.None);
        Assert.True(inspection.IsValid, string.Join("\n", inspection.Issues));
        var dataset = inspection.Dataset!;
        Assert.Equal(version, dataset.Info.CodebaseVersion);
        Assert.Equal(5, dataset.Info.Fps);
        Assert.Equal(TaskTexts, dataset.Tasks);
        Assert.Equal(lengths, dataset.Episodes.Select(e => e.Length));
        // Frames 0, 2, … of each episode carry an annotation.
        Assert.Equal(lengths.Sum(n => (n + 1) / 2), inspection.SpatialAnnotationCount);
        Assert.Equal(13, inspection.Statistics!.Action.Count);
        Assert.Equal([0, 0], inspection.Statistics.Action.Min);
        Assert.Equal([2.5f, 2], inspection.Statistics.Action.Max);

        for (var e = 0; e < lengths.Length; e++)
        {
            var episode = await dataset.ReadEpisodeAsync(dataset.Episodes[e], includeImages: true, CancellationToken.None);
            Assert.Equal(Enumerable.Repeat(e % 2, lengths[e]), episode.TaskIndices);
            for (var f = 0; f < lengths[e]; f++)
            {
                Assert.Equal([f, -e, f % 2], episode.States[f]);
                Assert.Equal([0.5f * f, e], episode.Actions[f]);
                // PNG is lossless: the pixels come back exactly.
                Assert.Equal(Pixels(0, e, f), episode.Images["observation.images.front"][f].Pixels);
                Assert.Equal(Pixels(1, e, f), episode.Images["observation.images.side"][f].Pixels);
            }
        }
    }

    [Fact]
    public async Task A_v21_dataset_keeps_episode_metadata_and_per_episode_statistics_in_json_lines()
    {
        await WriteAsync(LeRobotLayout.V21, [2, 3]);

        var episodes = File.ReadAllLines(Path.Combine(_root, "meta", "episodes.jsonl"));
        Assert.Equal("""{"episode_index":1,"tasks":["open the drawer"],"length":3,"seed":101,"source":"test","success":false}""", episodes[1]);
        var stats = JsonNode.Parse(File.ReadAllLines(Path.Combine(_root, "meta", "episodes_stats.jsonl"))[1])!["stats"]!;
        Assert.Equal(1.0, stats["action"]!["max"]![0]!.GetValue<double>());
        Assert.Equal(3, stats["observation.images.side"]!["mean"]!.AsArray().Count);
        await using var data = File.OpenRead(Path.Combine(_root, "data", "chunk-000", "episode_000001.parquet"));
        var frames = (await ParquetSerializer.DeserializeUntypedAsync(data)).Data;
        Assert.Equal("frame_000002.png", ((IDictionary<string, object>)frames[2]["observation.images.front"]!)["path"]);
    }

    [Fact]
    public async Task A_v30_dataset_keeps_all_episodes_in_one_data_file_and_their_metadata_as_columns()
    {
        await WriteAsync(LeRobotLayout.V30, [2, 3]);

        Assert.Equal(["file-000.parquet"], Directory.GetFiles(Path.Combine(_root, "data", "chunk-000")).Select(Path.GetFileName));
        await using var file = File.OpenRead(Path.Combine(_root, "meta", "episodes", "chunk-000", "file-000.parquet"));
        var rows = (await ParquetSerializer.DeserializeUntypedAsync(file)).Data;
        Assert.Equal(2, rows.Count);
        Assert.Equal((1L, 3L, 2L, 5L), ((long)rows[1]["episode_index"]!, (long)rows[1]["length"]!, (long)rows[1]["dataset_from_index"]!, (long)rows[1]["dataset_to_index"]!));
        Assert.Equal((101L, "test", false), ((long)rows[1]["seed"]!, (string)rows[1]["source"]!, (bool)rows[1]["success"]!));
        Assert.False(File.Exists(Path.Combine(_root, "meta", "episodes.jsonl")));

        // The dataset's statistics over all five frames: actions (0,0) (0.5,0) | (0,1) (0.5,1) (1,1).
        var stats = JsonNode.Parse(File.ReadAllText(Path.Combine(_root, "meta", "stats.json")))!;
        var action = stats["action"]!;
        Assert.Equal(5, action["count"]![0]!.GetValue<long>());
        Assert.Equal([0.0, 0.0], action["min"]!.AsArray().Select(v => v!.GetValue<double>()));
        Assert.Equal([1.0, 1.0], action["max"]!.AsArray().Select(v => v!.GetValue<double>()));
        Assert.Equal([0.4, 0.6], action["mean"]!.AsArray().Select(v => Math.Round(v!.GetValue<double>(), 12)));
        Assert.Equal([Math.Round(Math.Sqrt(0.14), 12), Math.Round(Math.Sqrt(0.24), 12)], action["std"]!.AsArray().Select(v => Math.Round(v!.GetValue<double>(), 12)));
        Assert.Equal(3, stats["observation.images.front"]!["mean"]!.AsArray().Count);
    }

    [Fact]
    public async Task A_frame_that_does_not_fit_the_schema_is_refused_before_anything_is_written()
    {
        var writer = new LeRobotWriter(_root, Schema);
        var frame = new LeRobotFrame(new Dictionary<string, byte[]> { ["front"] = Pixels(0, 0, 0) }, [0, 0, 0], [0, 0]);
        var error = await Assert.ThrowsAsync<ArgumentException>(() => writer.AddEpisodeAsync(new LeRobotEpisode("t", [frame])));
        Assert.Contains("no 'side' image", error.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_root, "data")));
        Assert.Equal(0, writer.Episodes);
    }
}
