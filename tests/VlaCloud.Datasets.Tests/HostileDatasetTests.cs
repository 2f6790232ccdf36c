using System.Diagnostics;
using System.Text.Json.Nodes;
using VlaCloud.Testing;

namespace VlaCloud.Datasets.Tests;

/// <summary>
/// Datasets are uploads: their images, metadata paths and videos are an attacker's input (issue 18, items 1 and 6).
/// Each test feeds one hostile piece and checks it is refused with the reason, without the damage it aimed at.
/// </summary>
public sealed class HostileDatasetTests
{
    private static readonly DatasetExpectations FrontCamera = new(ActionDim: 4, StateDim: 2, Cameras: ["front"], ImageWidth: 16, ImageHeight: 16);

    private static Task<DatasetInspection> InspectAsync(HandMadeDataset dataset) =>
        LeRobotDataset.InspectAsync(dataset.Root, FrontCamera, CancellationToken.None);

    public static TheoryData<string, int, int> Bombs => new()
    {
        { "png", 50_000, 50_000 },
        { "jpeg", 16_384, 16_384 },
    };

    [Theory]
    [MemberData(nameof(Bombs))]
    public void An_image_whose_header_declares_a_huge_size_is_refused_from_the_header_alone(string format, int width, int height)
    {
        var bomb = format == "png" ? ImageBombs.Png(width, height) : ImageBombs.Jpeg(width, height);
        Assert.InRange(bomb.Length, 50, 2000);

        var allocated = GC.GetAllocatedBytesForCurrentThread();
        var decoding = RgbImage.Decode(bomb, ImageLimits.MaxSide, ImageLimits.MaxSide);

        Assert.Equal(ImageDecodeStatus.TooLarge, decoding.Status);
        Assert.Equal((format, width, height), (decoding.Header!.Format, decoding.Header.Width, decoding.Header.Height));
        Assert.Null(decoding.Image);
        // What was allocated is the copy of the encoded bytes, not a pixel buffer (managed pixels would be width × height × 3).
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - allocated, 0, 64 * 1024);
        Assert.Null(RgbImage.Decode(bomb));
    }

    [Fact]
    public void Only_png_and_jpeg_are_decoded_and_a_bounded_image_decodes_as_before()
    {
        using var bitmap = new SkiaSharp.SKBitmap(12, 10);
        bitmap.Erase(new SkiaSharp.SKColor(10, 20, 30));
        using var webp = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Webp, 100);
        Assert.Equal(ImageDecodeStatus.NotAnImage, RgbImage.Decode(webp.ToArray(), 64, 64).Status);

        var png = HandMadeDataset.Png(1, 2, size: 12);
        var decoded = RgbImage.Decode(png, 12, 12);
        Assert.Equal(ImageDecodeStatus.Decoded, decoded.Status);
        Assert.Equal(new byte[] { 40, 40, 200 }, decoded.Image!.Pixels[..3]);
        Assert.Equal(ImageDecodeStatus.TooLarge, RgbImage.Decode(png, 11, 12).Status);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public async Task A_dataset_image_declaring_50000_squared_is_reported_without_being_decoded(int frame)
    {
        // Row 0 is decoded by validation; a middle row only has its header read. Either way the bomb is named, not decoded.
        using var dataset = new HandMadeDataset(episodes: 2, length: 5, imageOf: (e, f) => e == 1 && f == frame ? ImageBombs.Png() : null);
        var stopwatch = Stopwatch.StartNew();
        var inspection = await InspectAsync(dataset);

        Assert.False(inspection.IsValid);
        var issue = Assert.Single(inspection.Issues);
        Assert.Equal("data/chunk-000/episode_000001.parquet", issue.File);
        Assert.Equal($"row {frame}: 'observation.images.front' is 50000×50000; meta/info.json declares 16×16.", issue.Message);
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(30), $"validation took {stopwatch.Elapsed}");
    }

    [Fact]
    public async Task Reading_an_episode_for_training_refuses_a_bomb_before_decoding_it()
    {
        using var dataset = new HandMadeDataset(episodes: 1, length: 3, imageOf: (_, f) => f == 1 ? ImageBombs.Jpeg() : null);
        var opened = (await InspectAsync(dataset)).Dataset!;

        var error = await Assert.ThrowsAsync<InvalidDataException>(() => opened.ReadEpisodeAsync(opened.Episodes[0], includeImages: true, CancellationToken.None));
        Assert.Contains("is 16384×16384, larger than the 16×16 meta/info.json declares", error.Message);
    }

    public static TheoryData<string, string> EscapingPaths => new()
    {
        { "../{outside}/episode_{episode_index:06d}.parquet", "leaves the dataset folder" },
        { "data/../../{outside}/episode_{episode_index:06d}.parquet", "leaves the dataset folder" },
        { "{tmp}/{outside}/episode_{episode_index:06d}.parquet", "is an absolute path" },
    };

    [Theory]
    [MemberData(nameof(EscapingPaths))]
    public async Task A_data_path_that_leaves_the_dataset_folder_is_refused_whether_or_not_its_target_exists(string template, string reason)
    {
        using var dataset = new HandMadeDataset(episodes: 1, length: 2);
        var outside = $"outside-{Guid.NewGuid():N}";
        var info = dataset.ReadInfo();
        info["data_path"] = template.Replace("{outside}", outside).Replace("{tmp}", Path.GetTempPath().TrimEnd('/'));
        dataset.WriteInfo(info);
        // The data path's target: beside the dataset folder, or in the temp folder for the absolute one.
        var target = Path.Combine(Path.GetTempPath(), outside);

        var absent = await InspectAsync(dataset);
        Directory.CreateDirectory(target);
        File.Copy(dataset.PathOf("data/chunk-000/episode_000000.parquet"), Path.Combine(target, "episode_000000.parquet"));
        try
        {
            var present = await InspectAsync(dataset);
            var issue = Assert.Single(present.Issues);
            Assert.Equal("meta/info.json", issue.File);
            Assert.Contains(reason, issue.Message);
            // The same words whether the target exists or not: validation is no file-existence oracle.
            Assert.Equal(absent.Issues, present.Issues);
        }
        finally
        {
            Directory.Delete(target, recursive: true);
        }
    }

    [Fact]
    public async Task A_feature_name_or_video_key_that_is_a_path_is_refused()
    {
        using var dataset = new HandMadeDataset(episodes: 1, length: 2, video: true);
        var info = dataset.ReadInfo();
        var features = info["features"]!.AsObject();
        features["../../../etc"] = features["observation.images.front"]!.DeepClone();
        dataset.WriteInfo(info);

        var inspection = await InspectAsync(dataset);
        Assert.Contains(inspection.Issues, i => i.File == "meta/info.json" && i.Message.StartsWith("feature name '../../../etc' may not contain '/'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_symbolic_link_inside_the_dataset_is_not_followed()
    {
        using var dataset = new HandMadeDataset(episodes: 1, length: 2);
        var outside = Path.Combine(Path.GetTempPath(), $"outside-{Guid.NewGuid():N}.parquet");
        var data = dataset.PathOf("data/chunk-000/episode_000000.parquet");
        File.Move(data, outside);
        try
        {
            File.CreateSymbolicLink(data, outside);
            var inspection = await InspectAsync(dataset);
            var issue = Assert.Single(inspection.Issues);
            Assert.Contains("which is not a path inside the dataset folder", issue.Message);
        }
        finally
        {
            File.Delete(outside);
        }
    }

    [Fact]
    public async Task A_path_template_asking_for_a_billion_digits_is_refused_without_building_it()
    {
        using var dataset = new HandMadeDataset(episodes: 1, length: 2);
        var info = dataset.ReadInfo();
        info["data_path"] = "data/chunk-{episode_chunk:03d}/episode_{episode_index:0999999999d}.parquet";
        dataset.WriteInfo(info);

        var allocated = GC.GetTotalAllocatedBytes(precise: true);
        var inspection = await InspectAsync(dataset);
        Assert.Contains(inspection.Issues, i => i.Message == "data_path asks for more than 20 digits in '{episode_index:0999999999d}'.");
        // A 999999999-digit string is 2 GB; the whole process (other tests included) allocated far less meanwhile.
        Assert.InRange(GC.GetTotalAllocatedBytes(precise: true) - allocated, 0, 1L << 30);
        Assert.Throws<InvalidDataException>(() => LeRobotInfo.FormatPath("{episode_index:099999999999999999999d}", new Dictionary<string, object> { ["episode_index"] = 1 }));
    }

    [Fact]
    public async Task Camera_and_feature_shapes_past_the_bounds_are_refused_in_the_metadata()
    {
        using var dataset = new HandMadeDataset(episodes: 1, length: 2);
        var info = dataset.ReadInfo();
        var features = info["features"]!.AsObject();
        features["observation.images.front"]!["shape"] = new JsonArray(50_000, 50_000, 3);
        features["observation.state"]!["shape"] = new JsonArray(100_000, 100_000);
        dataset.WriteInfo(info);

        var issues = (await InspectAsync(dataset)).Issues;
        Assert.Contains(issues, i => i.Message == "camera 'observation.images.front' has shape [50000, 50000, 3]; images are limited to 2048 pixels per side.");
        Assert.Contains(issues, i => i.Message.StartsWith("feature 'observation.state' has shape [100000, 100000]; at most 65536 values", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Video_frames_are_bounded_before_a_buffer_is_made()
    {
        var error = await Assert.ThrowsAsync<InvalidDataException>(() =>
            VideoReader.ReadFramesAsync("/nonexistent.mp4", 0, 10, 10, 50_000, 50_000, CancellationToken.None));
        Assert.Contains("outside 1–2048 pixels per side", error.Message);
    }

    [Fact]
    public async Task Ffprobe_that_does_not_finish_is_killed_at_its_time_limit_and_when_cancelled()
    {
        // A FIFO nobody writes to: ffprobe opens it and waits forever, like a tool stuck on a hostile file.
        var fifo = Path.Combine(Path.GetTempPath(), $"stuck-{Guid.NewGuid():N}.mp4");
        using (var mkfifo = Process.Start("mkfifo", [fifo])) await mkfifo.WaitForExitAsync();
        try
        {
            var timedOut = await Assert.ThrowsAsync<InvalidDataException>(() =>
                VideoReader.ProbeAsync(fifo, CancellationToken.None, timeout: TimeSpan.FromMilliseconds(500)));
            Assert.Equal("ffprobe did not finish within 0.5 s.", timedOut.Message);
            Assert.Empty(ProcessesOpening(fifo));

            using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => VideoReader.ReadFramesAsync(fifo, 0, 5, 10, 16, 16, cancel.Token));
            Assert.Empty(ProcessesOpening(fifo));
        }
        finally
        {
            File.Delete(fifo);
        }
    }

    /// <summary>Processes whose command line names <paramref name="path"/>.</summary>
    private static List<int> ProcessesOpening(string path) =>
        [.. Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(d => int.TryParse(d, out _)).Select(int.Parse!)
            .Where(pid =>
            {
                try
                {
                    return File.ReadAllText($"/proc/{pid}/cmdline").Contains(path, StringComparison.Ordinal);
                }
                catch (IOException)
                {
                    return false;
                }
                catch (UnauthorizedAccessException)
                {
                    return false;
                }
            })];
}
