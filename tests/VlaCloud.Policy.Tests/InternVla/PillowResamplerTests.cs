using VlaCloud.Policy.InternVla.Imaging;

namespace VlaCloud.Policy.Tests.InternVla;

/// <summary>
/// Pillow's resampler against values worked out by hand from Resample.c. The fixtures' pixel_values check it on
/// whole images (the image_processor and dino_transform parity groups).
/// </summary>
public sealed class PillowResamplerTests
{
    private static byte[] Row(PillowFilter filter, int newWidth, params byte[] row) =>
        PillowResampler.Resize(row, row.Length, 1, 1, newWidth, 1, filter);

    [Fact]
    public void Bicubic_upscaling_rounds_fixed_point_weights_and_clips_the_overshoot()
    {
        // Output x=1: centre 0.75, taps at 0 and 1 with cubic weights 0.8671875 and 0.2265625, normalised to 0.79286 and
        // 0.20714; in 22-bit fixed point 255 · 868,821 + 2^21 >> 22 = 53. x=3 overshoots (255 · 1.0882) and clips to 255.
        Assert.Equal([0, 53, 202, 255], Row(PillowFilter.Bicubic, 4, 0, 255));
    }

    [Fact]
    public void Bilinear_downscaling_widens_the_kernel_by_the_scale()
    {
        // Scale 2: support 2, taps (0.75, 0.75, 0.25)/1.75 → 100 · 1,797,559 + 200 · 599,186 + 2^21 >> 22 = 71.
        Assert.Equal([71, 209], Row(PillowFilter.Bilinear, 2, 0, 100, 200, 255));
    }

    [Fact]
    public void The_vertical_pass_weighs_rows_as_the_horizontal_one_weighs_columns()
    {
        byte[] column = [0, 100, 200, 255];
        Assert.Equal([71, 209], PillowResampler.Resize(column, 1, 4, 1, 1, 2, PillowFilter.Bilinear));
    }

    [Fact]
    public void Channels_are_resampled_independently()
    {
        byte[] rgb = [0, 255, 7, 255, 0, 7];
        Assert.Equal([0, 255, 7, 53, 202, 7, 202, 53, 7, 255, 0, 7], PillowResampler.Resize(rgb, 2, 1, 3, 4, 1, PillowFilter.Bicubic));
    }

    [Fact]
    public void A_constant_image_stays_constant_at_any_size()
    {
        var image = new CameraImage(Enumerable.Repeat((byte)137, 37 * 23 * 3).ToArray(), 37, 23);
        foreach (var (w, h) in new[] { (5, 3), (112, 56), (37, 90), (200, 23) })
            foreach (var filter in Enum.GetValues<PillowFilter>())
                Assert.All(PillowResampler.Resize(image, w, h, filter).Rgb, v => Assert.Equal(137, v));
    }

    [Fact]
    public void The_same_size_is_a_copy()
    {
        var image = new CameraImage([1, 2, 3, 4, 5, 6], 2, 1);
        var copy = PillowResampler.Resize(image, 2, 1, PillowFilter.Bicubic);
        Assert.Equal(image.Rgb, copy.Rgb);
        Assert.NotSame(image.Rgb, copy.Rgb);
    }

    [Fact]
    public void Bad_sizes_are_refused()
    {
        var image = new CameraImage(new byte[12], 2, 2);
        Assert.Throws<ArgumentException>(() => PillowResampler.Resize(image, 0, 2, PillowFilter.Bilinear));
        Assert.Throws<ArgumentException>(() => PillowResampler.Resize(new CameraImage(new byte[5], 2, 2), 4, 4, PillowFilter.Bilinear));
        Assert.Throws<ArgumentException>(() => PillowResampler.Resize(image, 4, 4, (PillowFilter)1));
    }
}
