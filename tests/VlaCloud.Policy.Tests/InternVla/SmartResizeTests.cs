using VlaCloud.Policy.InternVla.Imaging;

namespace VlaCloud.Policy.Tests.InternVla;

/// <summary>Expected sizes were worked out by hand from upstream's smart_resize (and agree with the fixtures' grids).</summary>
public sealed class SmartResizeTests
{
    private const int Factor = 28;
    private const long MinPixels = 56 * 56;
    private const long MaxPixels = 28 * 28 * 1280;

    [Theory]
    [InlineData(60, 90, 56, 84)]     // the fixture's first image
    [InlineData(115, 50, 112, 56)]   // the fixture's second image
    [InlineData(224, 224, 224, 224)] // already whole patches
    [InlineData(480, 640, 476, 644)] // a VGA camera
    [InlineData(70, 126, 56, 112)]   // 2.5 and 4.5 patches: halves round to even, as Python's round()
    [InlineData(42, 98, 56, 112)]    // 1.5 and 3.5 round up to even
    public void Sides_round_to_the_nearest_multiple_of_the_factor(int height, int width, int expectedHeight, int expectedWidth)
    {
        Assert.Equal((expectedHeight, expectedWidth), SmartResize.Compute(height, width, Factor, MinPixels, MaxPixels));
    }

    [Fact]
    public void A_tiny_image_is_scaled_up_to_min_pixels()
    {
        Assert.Equal((56, 56), SmartResize.Compute(28, 28, Factor, MinPixels, MaxPixels));
        // 29×151 rounds to 28×140 = 3,920 < 6,272; β = √(6272 / 4379), ceil(29β / 28) = 2, ceil(151β / 28) = 7.
        Assert.Equal((56, 196), SmartResize.Compute(29, 151, Factor, 6272, 50176));
    }

    [Fact]
    public void A_huge_image_is_scaled_down_under_max_pixels()
    {
        // β = √(24,000,000 / 1,003,520) ≈ 4.890; floor(4000 / β / 28) = 29, floor(6000 / β / 28) = 43.
        Assert.Equal((812, 1204), SmartResize.Compute(4000, 6000, Factor, MinPixels, MaxPixels));
        Assert.Equal((168, 252), SmartResize.Compute(317, 421, Factor, 6272, 50176));
        var (h, w) = SmartResize.Compute(20000, 30000, Factor, MinPixels, MaxPixels);
        Assert.True((long)h * w <= MaxPixels && h % Factor == 0 && w % Factor == 0);
    }

    [Theory]
    [InlineData(27, 100)]
    [InlineData(100, 27)]
    [InlineData(0, 500)]
    public void A_side_shorter_than_the_factor_is_refused_as_upstream_does(int height, int width)
    {
        var e = Assert.Throws<ArgumentException>(() => SmartResize.Compute(height, width, Factor, MinPixels, MaxPixels));
        Assert.Equal($"height:{height} and width:{width} must be larger than factor:28", e.Message);
    }

    [Fact]
    public void An_aspect_ratio_over_200_is_refused_and_200_itself_is_kept()
    {
        Assert.Equal((28, 5600), SmartResize.Compute(28, 5600, Factor, MinPixels, MaxPixels));
        var e = Assert.Throws<ArgumentException>(() => SmartResize.Compute(28, 5601, Factor, MinPixels, MaxPixels));
        Assert.StartsWith("absolute aspect ratio must be smaller than 200", e.Message);
        Assert.Throws<ArgumentException>(() => SmartResize.Compute(10000, 40, Factor, MinPixels, MaxPixels));
    }

    [Fact]
    public void A_size_that_cannot_fit_max_pixels_is_refused_instead_of_given_a_zero_side()
    {
        // Upstream computes 0×392 here and fails later inside the resize.
        var e = Assert.Throws<ArgumentException>(() => SmartResize.Compute(28, 5600, Factor, MinPixels, 784));
        Assert.Contains("0×392", e.Message);
    }
}
