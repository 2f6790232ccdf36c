namespace VlaCloud.Policy.InternVla.Imaging;

/// <summary>
/// Qwen2-VL's <c>smart_resize</c> (transformers <c>image_processing_qwen2_vl.py</c>): the size an image is resized to
/// before patching, with both sides multiples of <c>factor</c> (patch × merge = 28), the area within
/// [<c>minPixels</c>, <c>maxPixels</c>] and the aspect ratio kept as closely as rounding allows.
/// </summary>
public static class SmartResize
{
    /// <summary>Upstream refuses images whose long side exceeds the short one more than this many times.</summary>
    public const double MaxAspectRatio = 200;

    /// <summary>The resized (height, width).</summary>
    /// <exception cref="ArgumentException">
    /// A side is shorter than <paramref name="factor"/>, the aspect ratio exceeds 200 (upstream's ValueErrors), or no
    /// size of whole factors fits <paramref name="maxPixels"/> (where upstream would go on to fail in the resize).
    /// </exception>
    public static (int Height, int Width) Compute(int height, int width, int factor, long minPixels, long maxPixels)
    {
        if (factor <= 0) throw new ArgumentOutOfRangeException(nameof(factor), "the factor must be positive");
        if (height < factor || width < factor)
            throw new ArgumentException($"height:{height} and width:{width} must be larger than factor:{factor}");
        var ratio = (double)Math.Max(height, width) / Math.Min(height, width);
        if (ratio > MaxAspectRatio)
            throw new ArgumentException($"absolute aspect ratio must be smaller than {MaxAspectRatio}, got {ratio}");
        // Python's round() rounds halves to even, as Math.Round does.
        var h = (long)Math.Round((double)height / factor) * factor;
        var w = (long)Math.Round((double)width / factor) * factor;
        var area = (double)height * width;
        if (h * w > maxPixels)
        {
            var beta = Math.Sqrt(area / maxPixels);
            h = (long)Math.Floor(height / beta / factor) * factor;
            w = (long)Math.Floor(width / beta / factor) * factor;
        }
        else if (h * w < minPixels)
        {
            var beta = Math.Sqrt(minPixels / area);
            h = (long)Math.Ceiling(height * beta / factor) * factor;
            w = (long)Math.Ceiling(width * beta / factor) * factor;
        }
        if (h <= 0 || w <= 0 || h > int.MaxValue || w > int.MaxValue)
            throw new ArgumentException($"an image of {height}×{width} has no size of whole {factor}-pixel patches within max_pixels {maxPixels} (got {h}×{w})");
        return ((int)h, (int)w);
    }
}
