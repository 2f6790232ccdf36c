using VlaCloud.Policy.InternVla.Imaging;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Tests.InternVla;

public sealed class QwenImageProcessorTests
{
    private static readonly QwenImageProcessor Processor = new(QwenImageProcessorConfig.Load(GoldenFixtures.File("qwen25vl_tiny.preprocessor_config.json")));

    private static CameraImage Noise(int width, int height, int seed)
    {
        var bytes = new byte[width * height * 3];
        new Random(seed).NextBytes(bytes);
        return new CameraImage(bytes, width, height);
    }

    [Fact]
    public void Several_images_are_patched_one_after_another_each_at_its_own_size()
    {
        var a = Noise(90, 60, 1);
        var b = Noise(50, 115, 2);
        var both = Processor.Process([a, b]);
        var first = Processor.Process([a]);
        var second = Processor.Process([b]);
        Assert.Equal([new ImageGrid(1, 4, 6), new ImageGrid(1, 8, 4)], both.Grids);
        Assert.Equal([(56, 84), (112, 56)], both.Sizes);
        Assert.Equal([56L, 1176], both.PixelValues.Shape);
        Assert.Equal(first.PixelValues.Values.Concat(second.PixelValues.Values), both.PixelValues.Values);
        using var grid = both.GridThwTensor();
        Assert.Equal([1L, 4, 6, 1, 8, 4], grid.data<long>().ToArray());
        using var pixels = both.PixelValues.ToTensor();
        Assert.Equal([56L, 1176], pixels.shape);
        Assert.Equal(ScalarType.Float32, pixels.dtype);
    }

    [Fact]
    public void A_patch_row_holds_channel_frame_row_and_column_within_its_merge_block()
    {
        // Raw values (no rescale, no normalisation): R = x, G = y, B = 7.
        var raw = new QwenImageProcessor(new QwenImageProcessorConfig { DoRescale = false, DoNormalize = false });
        var rgb = new byte[56 * 56 * 3];
        for (var y = 0; y < 56; y++)
            for (var x = 0; x < 56; x++)
                (rgb[(y * 56 + x) * 3], rgb[(y * 56 + x) * 3 + 1], rgb[(y * 56 + x) * 3 + 2]) = ((byte)x, (byte)y, 7);
        var batch = raw.Process([new CameraImage(rgb, 56, 56)]);
        Assert.Equal(new ImageGrid(1, 4, 4), batch.Grids[0]);
        const int row = 5, length = 3 * 2 * 14 * 14, plane = 14 * 14;
        // Row 5 is merge block (0, 1), second patch of its top row: patch row 0, patch column 3 → pixels from (x 42, y 0).
        var values = batch.PixelValues.Values.AsSpan(row * length, length);
        Assert.Equal(42, values[0]);                        // R, frame 0, y 0, x 0
        Assert.Equal(42 + 5, values[3 * 14 + 5]);           // R, frame 0, y 3, x 5
        Assert.Equal(42 + 5, values[plane + 3 * 14 + 5]);   // R, frame 1: the image repeated
        Assert.Equal(3, values[2 * plane + 3 * 14 + 5]);    // G, frame 0, y 3
        Assert.Equal(7, values[4 * plane]);                 // B
    }

    [Fact]
    public void Values_are_rescaled_and_normalised_with_clip_statistics()
    {
        var white = new CameraImage(Enumerable.Repeat((byte)255, 56 * 56 * 3).ToArray(), 56, 56);
        var values = Processor.Process([white]).PixelValues.Values;
        const int plane = 2 * 14 * 14;
        Assert.Equal((1 - 0.48145466f) / 0.26862954f, values[0], 5);
        Assert.Equal((1 - 0.4578275f) / 0.26130258f, values[plane], 5);
        Assert.Equal((1 - 0.40821073f) / 0.27577711f, values[2 * plane], 5);
    }

    [Fact]
    public void An_image_of_224_pixels_takes_64_tokens()
    {
        Assert.Equal(new ImageGrid(1, 16, 16), Processor.GridFor(224, 224));
        Assert.Equal(64, Processor.TokensFor(224, 224));
    }

    [Fact]
    public void The_config_reads_min_and_max_pixels_ignores_size_as_upstream_does_and_defaults_the_rest()
    {
        var config = QwenImageProcessorConfig.FromJson("""{"min_pixels": 6272, "max_pixels": 50176, "size": {"shortest_edge": 1, "longest_edge": 2}}""");
        Assert.Equal(6272, config.MinPixels);
        Assert.Equal(50176, config.MaxPixels);
        Assert.Equal(PillowFilter.Bicubic, config.Resample);
        Assert.Equal(28, config.Factor);
        Assert.Equal(28 * 28 * 1280, QwenImageProcessorConfig.FromJson("{}").MaxPixels);
        Assert.Equal(56 * 56, QwenImageProcessorConfig.FromJson("""{"size": {"shortest_edge": 1, "longest_edge": 2}}""").MinPixels);
        Assert.Throws<InvalidDataException>(() => QwenImageProcessorConfig.FromJson("""{"resample": 1}"""));
        Assert.Throws<InvalidDataException>(() => QwenImageProcessorConfig.FromJson("[1, 2"));
        Assert.Throws<InvalidDataException>(() => QwenImageProcessorConfig.FromJson("""{"max_pixels": "many"}"""));
        Assert.Throws<InvalidDataException>(() => QwenImageProcessorConfig.FromJson("""{"image_mean": [0.5, "x", 0.5]}"""));
        Assert.Throws<InvalidDataException>(() => QwenImageProcessorConfig.FromJson("""{"patch_size": 0}"""));
    }

    [Fact]
    public void An_image_the_processor_cannot_take_is_refused_with_upstreams_reason()
    {
        var e = Assert.Throws<ArgumentException>(() => Processor.Process([Noise(20, 100, 3)]));
        Assert.Contains("must be larger than factor:28", e.Message);
        Assert.Throws<ArgumentException>(() => Processor.Process([new CameraImage(new byte[10], 56, 56)]));
    }
}
