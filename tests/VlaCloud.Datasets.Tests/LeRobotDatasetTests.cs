using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json.Nodes;
using Parquet.Serialization;
using VlaCloud.Testing;

namespace VlaCloud.Datasets.Tests;

public sealed class LeRobotDatasetTests
{
    private static readonly DatasetExpectations FrontCamera = new(ActionDim: 4, StateDim: 2, Cameras: ["front"], ImageWidth: 16, ImageHeight: 16);

    private static Task<DatasetInspection> InspectAsync(HandMadeDataset dataset, DatasetExpectations? expectations = null) =>
        LeRobotDataset.InspectAsync(dataset.Root, expectations ?? FrontCamera, CancellationToken.None);

    private static void AssertSingleIssue(DatasetInspection inspection, string file, string messagePart)
    {
        Assert.False(inspection.IsValid);
        Assert.Contains(inspection.Issues, issue => issue.File == file && issue.Message.Contains(messagePart, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("v2.1", false)]
    [InlineData("v2.1", true)]
    [InlineData("v3.0", false)]
    [InlineData("v3.0", true)]
    public async Task A_well_formed_dataset_is_valid_and_its_frames_read_back(string version, bool video)
    {
        using var dataset = new HandMadeDataset(version, episodes: 3, length: 5, video: video);
        var inspection = await InspectAsync(dataset);

        Assert.True(inspection.IsValid, string.Join("\n", inspection.Issues));
        var opened = inspection.Dataset!;
        Assert.Equal(3, opened.Episodes.Count);
        Assert.Equal(15, opened.TotalFrames);
        Assert.Equal(HandMadeDataset.TaskTexts, opened.Tasks);

        var episode = await opened.ReadEpisodeAsync(opened.Episodes[2], includeImages: true, CancellationToken.None);
        Assert.Equal(HandMadeDataset.ActionOf(2, 3), episode.Actions[3]);
        Assert.Equal(HandMadeDataset.StateOf(2, 4), episode.States[4]);
        Assert.All(episode.TaskIndices, t => Assert.Equal(0, t));
        var images = episode.Images["observation.images.front"];
        Assert.Equal(5, images.Length);
        Assert.All(images, image => Assert.Equal((16, 16, 16 * 16 * 3), (image.Width, image.Height, image.Pixels.Length)));
        if (!video) Assert.Equal(new byte[] { 80, 60, 200 }, images[3].Pixels[..3]);
        // mpeg4 is lossy: the grey written for a frame is 10 × its index in the file + a shade, within a few levels.
        // v2.1 has a file per episode (shade = episode 2); v3.0 one file for all (episode 2 starts at frame 10).
        else Assert.InRange(images[3].Pixels[0], version == "v3.0" ? 125 : 27, version == "v3.0" ? 135 : 37);
    }

    [Fact]
    public async Task Statistics_cover_every_frame_with_numpy_style_quantiles()
    {
        using var dataset = new HandMadeDataset(episodes: 2, length: 11);
        var statistics = (await InspectAsync(dataset)).Statistics!;

        Assert.Equal(22, statistics.Action.Count);
        Assert.Equal([0, 0, 0, 0], statistics.Action.Min);
        Assert.Equal([1, 10, 5, 1], statistics.Action.Max);
        Assert.Equal(5.0, statistics.Action.Mean[1], 6);
        // frame index 0..10 twice: np.quantile(..., 0.99) = 10, 0.01 → 0.
        Assert.Equal(10.0, statistics.Action.Q99[1], 6);
        Assert.Equal(0.0, statistics.Action.Q01[1], 6);
        Assert.Equal(Math.Sqrt(10.0), statistics.Action.Std[1], 6);
        Assert.Equal([0, -1], statistics.State!.Min);
    }

    [Fact]
    public async Task A_missing_info_file_is_reported_by_name()
    {
        using var dataset = new HandMadeDataset();
        File.Delete(dataset.PathOf("meta/info.json"));
        AssertSingleIssue(await InspectAsync(dataset), "meta/info.json", "not found");
    }

    [Fact]
    public async Task An_unknown_codebase_version_is_refused()
    {
        using var dataset = new HandMadeDataset();
        var info = dataset.ReadInfo();
        info["codebase_version"] = "v1.6";
        dataset.WriteInfo(info);
        AssertSingleIssue(await InspectAsync(dataset), "meta/info.json", "codebase_version is 'v1.6'");
    }

    [Fact]
    public async Task A_data_file_with_fewer_rows_than_its_episode_says_is_named_with_both_counts()
    {
        using var dataset = new HandMadeDataset(length: 5);
        var episodes = File.ReadAllLines(dataset.PathOf("meta/episodes.jsonl"));
        episodes[1] = episodes[1].Replace("\"length\":5", "\"length\":6");
        File.WriteAllLines(dataset.PathOf("meta/episodes.jsonl"), episodes);
        var info = dataset.ReadInfo();
        info["total_frames"] = 16;
        dataset.WriteInfo(info);

        AssertSingleIssue(await InspectAsync(dataset), "data/chunk-000/episode_000001.parquet", "has 5 rows; the episode metadata says 6");
    }

    [Fact]
    public async Task A_missing_data_file_is_reported()
    {
        using var dataset = new HandMadeDataset();
        File.Delete(dataset.PathOf("data/chunk-000/episode_000002.parquet"));
        AssertSingleIssue(await InspectAsync(dataset), "data/chunk-000/episode_000002.parquet", "missing");
    }

    [Fact]
    public async Task A_corrupt_parquet_file_is_reported_as_unreadable()
    {
        using var dataset = new HandMadeDataset();
        await File.WriteAllTextAsync(dataset.PathOf("data/chunk-000/episode_000000.parquet"), "not parquet at all");
        AssertSingleIssue(await InspectAsync(dataset), "data/chunk-000/episode_000000.parquet", "not a readable parquet file");
    }

    [Fact]
    public async Task Timestamps_off_the_frame_rate_are_reported_with_the_row()
    {
        using var dataset = new HandMadeDataset(length: 4);
        var file = dataset.PathOf("data/chunk-000/episode_000000.parquet");
        var rows = (await ParquetSerializer.DeserializeAsync<HandMadeDataset.Frame>(file)).Data.ToList();
        rows[2].Timestamp = 0.25f;
        await ParquetSerializer.SerializeAsync(rows, file);

        AssertSingleIssue(await InspectAsync(dataset), "data/chunk-000/episode_000000.parquet", "row 2 (episode 0): timestamp 0.25 does not match frame 2 at 10 fps");
    }

    [Fact]
    public async Task Action_values_of_the_wrong_width_or_not_finite_are_reported()
    {
        using var dataset = new HandMadeDataset(length: 4);
        var file = dataset.PathOf("data/chunk-000/episode_000001.parquet");
        var rows = (await ParquetSerializer.DeserializeAsync<HandMadeDataset.Frame>(file)).Data.ToList();
        rows[0].Action = [1, 2, 3];
        rows[1].Action = [1, float.NaN, 3, 4];
        await ParquetSerializer.SerializeAsync(rows, file);

        var inspection = await InspectAsync(dataset);
        AssertSingleIssue(inspection, "data/chunk-000/episode_000001.parquet", "row 0 (episode 1): 'action' has 3 values; meta/info.json declares 4");
        AssertSingleIssue(inspection, "data/chunk-000/episode_000001.parquet", "row 1 (episode 1): 'action' contains NaN or infinity");
    }

    [Fact]
    public async Task A_task_index_outside_the_tasks_is_reported()
    {
        using var dataset = new HandMadeDataset(length: 3);
        var file = dataset.PathOf("data/chunk-000/episode_000000.parquet");
        var rows = (await ParquetSerializer.DeserializeAsync<HandMadeDataset.Frame>(file)).Data.ToList();
        rows[1].TaskIndex = 7;
        await ParquetSerializer.SerializeAsync(rows, file);
        AssertSingleIssue(await InspectAsync(dataset), "data/chunk-000/episode_000000.parquet", "task_index 7 is not in meta tasks (0..1)");
    }

    [Fact]
    public async Task An_image_that_is_not_an_image_or_has_the_wrong_size_is_reported()
    {
        using var dataset = new HandMadeDataset(length: 3);
        var file = dataset.PathOf("data/chunk-000/episode_000000.parquet");
        var rows = (await ParquetSerializer.DeserializeAsync<HandMadeDataset.Frame>(file)).Data.ToList();
        rows[0].Image!.Bytes = [1, 2, 3, 4];
        rows[2].Image!.Bytes = HandMadeDataset.Png(0, 2, size: 8);
        await ParquetSerializer.SerializeAsync(rows, file);

        var inspection = await InspectAsync(dataset);
        AssertSingleIssue(inspection, "data/chunk-000/episode_000000.parquet", "row 0: 'observation.images.front' is not a PNG or JPEG image");
        AssertSingleIssue(inspection, "data/chunk-000/episode_000000.parquet", "row 2: 'observation.images.front' is 8×8; meta/info.json declares 16×16");
    }

    [Fact]
    public async Task A_truncated_video_is_reported_with_its_frame_count()
    {
        using var dataset = new HandMadeDataset(episodes: 2, length: 6, video: true);
        var info = dataset.ReadInfo();
        var episodes = File.ReadAllLines(dataset.PathOf("meta/episodes.jsonl"));
        episodes[1] = episodes[1].Replace("\"length\":6", "\"length\":9");
        File.WriteAllLines(dataset.PathOf("meta/episodes.jsonl"), episodes);
        info["total_frames"] = 15;
        dataset.WriteInfo(info);
        // The parquet file has 6 rows too; rewrite it with 9 so only the video is short.
        var file = dataset.PathOf("data/chunk-000/episode_000001.parquet");
        var rows = (await ParquetSerializer.DeserializeAsync<HandMadeDataset.Frame>(file)).Data.ToList();
        for (var f = 6; f < 9; f++)
            rows.Add(new HandMadeDataset.Frame { State = [0, 0], Action = [0, 0, 0, 0], Timestamp = f / 10f, FrameIndex = f, EpisodeIndex = 1, Index = 6 + f, TaskIndex = 1 });
        await ParquetSerializer.SerializeAsync(rows, file);

        AssertSingleIssue(await InspectAsync(dataset), "videos/chunk-000/observation.images.front/episode_000001.mp4", "has 6 frames for episode 1; it needs 9");
    }

    [Fact]
    public async Task A_dataset_that_does_not_fit_the_embodiment_says_how()
    {
        using var dataset = new HandMadeDataset();
        var inspection = await InspectAsync(dataset, new DatasetExpectations(ActionDim: 7, StateDim: 8, Cameras: ["front", "wrist"], 64, 64));
        AssertSingleIssue(inspection, "meta/info.json", "'action' has 4 dimensions; the embodiment has 7");
        AssertSingleIssue(inspection, "meta/info.json", "'observation.state' has 2 dimensions; the embodiment has 8");
        AssertSingleIssue(inspection, "meta/info.json", "has no camera 'observation.images.wrist'");
        AssertSingleIssue(inspection, "meta/info.json", "camera 'observation.images.front' is 16×16; the embodiment expects 64×64");
    }

    [Fact]
    public async Task Totals_that_disagree_with_the_episodes_are_reported()
    {
        using var dataset = new HandMadeDataset(episodes: 3, length: 5);
        var info = dataset.ReadInfo();
        info["total_episodes"] = 4;
        info["total_frames"] = 99;
        dataset.WriteInfo(info);
        var inspection = await InspectAsync(dataset);
        AssertSingleIssue(inspection, "meta/info.json", "total_episodes is 4; the dataset has 3 episodes");
        AssertSingleIssue(inspection, "meta/info.json", "total_frames is 99; the episodes add up to 15");
    }

    [Fact]
    public async Task A_feature_without_a_known_dtype_and_missing_index_columns_are_reported()
    {
        using var dataset = new HandMadeDataset();
        var info = dataset.ReadInfo();
        var features = info["features"]!.AsObject();
        features.Remove("frame_index");
        features["observation.depth"] = new JsonObject { ["dtype"] = "float16x", ["shape"] = new JsonArray(1) };
        dataset.WriteInfo(info);
        var inspection = await InspectAsync(dataset);
        AssertSingleIssue(inspection, "meta/info.json", "feature 'observation.depth' has dtype 'float16x'");
        AssertSingleIssue(inspection, "meta/info.json", "features lacks the required column 'frame_index'");
    }

    [Theory]
    [InlineData("zip")]
    [InlineData("tar")]
    [InlineData("tar.gz")]
    public async Task An_archived_dataset_extracts_under_one_folder_and_validates(string format)
    {
        using var dataset = new HandMadeDataset();
        var archive = Path.Combine(Path.GetTempPath(), $"ds-{Guid.NewGuid():N}.{format}");
        var target = Directory.CreateTempSubdirectory("extract-").FullName;
        try
        {
            WriteArchive(format, dataset.Root, archive, topFolder: "my_dataset");
            await DatasetArchive.ExtractAsync(archive, target, new ArchiveLimits(), CancellationToken.None);
            Assert.Equal(Path.Combine(target, "my_dataset"), LeRobotDataset.FindRoot(target));
            var inspection = await LeRobotDataset.InspectAsync(target, FrontCamera, CancellationToken.None);
            Assert.True(inspection.IsValid, string.Join("\n", inspection.Issues));
        }
        finally
        {
            File.Delete(archive);
            Directory.Delete(target, recursive: true);
        }
    }

    [Fact]
    public async Task An_archive_entry_that_escapes_the_folder_is_refused_and_nothing_lands_outside()
    {
        var archive = Path.Combine(Path.GetTempPath(), $"evil-{Guid.NewGuid():N}.zip");
        var target = Directory.CreateTempSubdirectory("extract-").FullName;
        var escaped = Path.GetFullPath(Path.Combine(target, "..", "escaped.txt"));
        try
        {
            using (var zip = ZipFile.Open(archive, ZipArchiveMode.Create))
            {
                using var writer = new StreamWriter(zip.CreateEntry("../escaped.txt").Open());
                writer.Write("gotcha");
            }
            var error = await Assert.ThrowsAsync<InvalidDataException>(() => DatasetArchive.ExtractAsync(archive, target, new ArchiveLimits(), CancellationToken.None));
            Assert.Contains("points outside the dataset folder", error.Message);
            Assert.False(File.Exists(escaped));
        }
        finally
        {
            File.Delete(archive);
            Directory.Delete(target, recursive: true);
        }
    }

    [Fact]
    public async Task An_archive_past_the_size_limit_or_not_an_archive_is_refused()
    {
        using var dataset = new HandMadeDataset();
        var archive = Path.Combine(Path.GetTempPath(), $"big-{Guid.NewGuid():N}.tar");
        var target = Directory.CreateTempSubdirectory("extract-").FullName;
        try
        {
            WriteArchive("tar", dataset.Root, archive, topFolder: null);
            var tooBig = await Assert.ThrowsAsync<InvalidDataException>(() => DatasetArchive.ExtractAsync(archive, target, new ArchiveLimits(MaxTotalBytes: 1000), CancellationToken.None));
            Assert.Contains("expands past the limit of 1000 bytes", tooBig.Message);

            await File.WriteAllTextAsync(archive, "just text");
            var notArchive = await Assert.ThrowsAsync<InvalidDataException>(() => DatasetArchive.ExtractAsync(archive, target, new ArchiveLimits(), CancellationToken.None));
            Assert.Contains("not a zip, tar or tar.gz archive", notArchive.Message);
        }
        finally
        {
            File.Delete(archive);
            Directory.Delete(target, recursive: true);
        }
    }

    private static void WriteArchive(string format, string folder, string archive, string? topFolder)
    {
        var staging = folder;
        if (topFolder is not null)
        {
            staging = Directory.CreateTempSubdirectory("stage-").FullName;
            CopyDirectory(folder, Path.Combine(staging, topFolder));
        }
        switch (format)
        {
            case "zip": ZipFile.CreateFromDirectory(staging, archive); break;
            case "tar": TarFile.CreateFromDirectory(staging, archive, includeBaseDirectory: false); break;
            default:
                using (var file = File.Create(archive))
                using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
                    TarFile.CreateFromDirectory(staging, gzip, includeBaseDirectory: false);
                break;
        }
        if (topFolder is not null) Directory.Delete(staging, recursive: true);
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
    }
}
