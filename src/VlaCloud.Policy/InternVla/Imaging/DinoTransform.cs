namespace VlaCloud.Policy.InternVla.Imaging;

/// <summary>
/// InternVLA-M1's DINOv2 preprocessing (<c>DINOv2BackBone.dino_transform</c> and <c>prepare_dino_input</c>):
/// torchvision <c>Resize(224)</c> on a PIL image (the short side to 224, the long side to
/// <c>int(224 · long / short)</c>, Pillow bilinear with antialias), <c>ToTensor</c> (÷ 255 in float32) and
/// <c>Normalize</c> with ImageNet's mean and std, in float32. Views of a sample stay together:
/// [samples · views, 3, H, W].
/// </summary>
public sealed class DinoTransform
{
    /// <summary>torchvision's ImageNet mean.</summary>
    public static IReadOnlyList<float> ImageNetMean { get; } = [0.485f, 0.456f, 0.406f];

    /// <summary>torchvision's ImageNet std.</summary>
    public static IReadOnlyList<float> ImageNetStd { get; } = [0.229f, 0.224f, 0.225f];

    /// <summary>The transform with the short side resized to <paramref name="shortSide"/> (M1: 224).</summary>
    public DinoTransform(int shortSide = 224)
    {
        if (shortSide <= 0) throw new ArgumentOutOfRangeException(nameof(shortSide), "the short side must be positive");
        ShortSide = shortSide;
    }

    /// <summary>The short side after resizing.</summary>
    public int ShortSide { get; }

    /// <summary>The resized (height, width) of an image of this size (torchvision's <c>_compute_resized_output_size</c>).</summary>
    public (int Height, int Width) ResizedSize(int height, int width)
    {
        var (shortSide, longSide) = width <= height ? (width, height) : (height, width);
        var newLong = (int)((double)ShortSide * longSide / shortSide);
        return width <= height ? (newLong, ShortSide) : (ShortSide, newLong);
    }

    /// <summary>
    /// <c>prepare_dino_input(samples)</c>: each sample's views transformed and stacked, samples after one another.
    /// Every view must come out the same size (upstream stacks them).
    /// </summary>
    /// <exception cref="ArgumentException">An image is invalid, or the views resize to different sizes.</exception>
    public PixelArray Prepare(IReadOnlyList<IReadOnlyList<CameraImage>> samples)
    {
        var views = samples.SelectMany(s => s).ToList();
        if (samples.Count == 0 || samples.Any(s => s.Count != samples[0].Count) || samples[0].Count == 0)
            throw new ArgumentException("every sample needs the same, positive number of views", nameof(samples));
        var sizes = views.Select(v => { v.Validate(); return ResizedSize(v.Height, v.Width); }).Distinct().ToList();
        if (sizes.Count != 1)
            throw new ArgumentException($"the views resize to different sizes ({string.Join(", ", sizes.Select(s => $"{s.Height}×{s.Width}"))}) and cannot be stacked", nameof(samples));
        var (h, w) = sizes[0];
        var plane = h * w;
        var values = new float[views.Count * 3 * plane];
        for (var v = 0; v < views.Count; v++)
        {
            var rgb = PillowResampler.Resize(views[v], w, h, PillowFilter.Bilinear).Rgb;
            var offset = v * 3 * plane;
            for (var i = 0; i < plane; i++)
                for (var c = 0; c < 3; c++)
                    values[offset + c * plane + i] = ((float)rgb[i * 3 + c] / 255f - ImageNetMean[c]) / ImageNetStd[c];
        }
        return new PixelArray(values, [views.Count, 3, h, w]);
    }
}
