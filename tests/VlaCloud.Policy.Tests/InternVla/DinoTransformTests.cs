using VlaCloud.Policy.InternVla.Imaging;

namespace VlaCloud.Policy.Tests.InternVla;

public sealed class DinoTransformTests
{
    private static readonly DinoTransform Transform = new();

    private static CameraImage Solid(int width, int height, byte r, byte g, byte b) =>
        new([.. Enumerable.Range(0, width * height).SelectMany(_ => new[] { r, g, b })], width, height);

    [Theory]
    [InlineData(224, 224, 224, 224)]
    [InlineData(240, 300, 224, 280)]
    [InlineData(300, 241, 278, 224)] // int(224 · 300 / 241) = int(278.8)
    [InlineData(100, 50, 448, 224)]
    public void The_short_side_becomes_224_and_the_long_side_is_truncated(int height, int width, int expectedHeight, int expectedWidth)
    {
        Assert.Equal((expectedHeight, expectedWidth), Transform.ResizedSize(height, width));
    }

    [Fact]
    public void Views_of_a_sample_stay_together_in_sample_order()
    {
        var prepared = Transform.Prepare([[Solid(224, 224, 0, 0, 0), Solid(224, 224, 255, 0, 0)], [Solid(224, 224, 0, 255, 0), Solid(224, 224, 0, 0, 255)]]);
        Assert.Equal([4L, 3, 224, 224], prepared.Shape);
        const int plane = 224 * 224;
        float At(int view, int channel) => prepared.Values[(view * 3 + channel) * plane + 1234];
        Assert.Equal((0 - 0.485f) / 0.229f, At(0, 0), 6);
        Assert.Equal((1 - 0.485f) / 0.229f, At(1, 0), 6); // sample 0, view 1: red
        Assert.Equal((1 - 0.456f) / 0.224f, At(2, 1), 6); // sample 1, view 0: green
        Assert.Equal((1 - 0.406f) / 0.225f, At(3, 2), 6); // sample 1, view 1: blue
    }

    [Fact]
    public void Views_are_resized_with_the_bilinear_filter()
    {
        var rgb = new byte[240 * 300 * 3];
        new Random(5).NextBytes(rgb);
        var view = new CameraImage(rgb, 300, 240);
        var prepared = Transform.Prepare([[view]]);
        var resized = PillowResampler.Resize(view, 280, 224, PillowFilter.Bilinear).Rgb;
        Assert.Equal([1L, 3, 224, 280], prepared.Shape);
        Assert.Equal((resized[(10 * 280 + 20) * 3 + 1] / 255f - 0.456f) / 0.224f, prepared.Values[224 * 280 + 10 * 280 + 20], 6);
    }

    [Fact]
    public void Views_that_resize_to_different_sizes_cannot_be_stacked()
    {
        Assert.Throws<ArgumentException>(() => Transform.Prepare([[Solid(224, 224, 1, 2, 3), Solid(300, 224, 1, 2, 3)]]));
        Assert.Throws<ArgumentException>(() => Transform.Prepare([[Solid(224, 224, 1, 2, 3)], []]));
        Assert.Throws<ArgumentException>(() => Transform.Prepare([]));
    }
}
