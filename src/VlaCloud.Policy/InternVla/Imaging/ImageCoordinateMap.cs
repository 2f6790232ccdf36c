namespace VlaCloud.Policy.InternVla.Imaging;

/// <summary>
/// Maps pixel coordinates between a camera image and the image the model sees after <see cref="SmartResize"/>.
/// Coordinates are continuous, with pixel edges at whole numbers (pixel i spans [i, i+1)), so each axis scales by its
/// size ratio; that is the geometry Pillow's resampler uses (output pixel centre <c>(i + 0.5) · scale</c>). Qwen2.5-VL
/// answers in absolute pixels of the resized image.
/// </summary>
/// <param name="SourceWidth">The camera image's width.</param>
/// <param name="SourceHeight">The camera image's height.</param>
/// <param name="ResizedWidth">The resized width.</param>
/// <param name="ResizedHeight">The resized height.</param>
public sealed record ImageCoordinateMap(int SourceWidth, int SourceHeight, int ResizedWidth, int ResizedHeight)
{
    /// <summary>Camera x,y pairs → resized x,y pairs.</summary>
    public float[] ToResized(ReadOnlySpan<float> xy) => Scale(xy, (double)ResizedWidth / SourceWidth, (double)ResizedHeight / SourceHeight);

    /// <summary>Resized x,y pairs → camera x,y pairs.</summary>
    public float[] ToSource(ReadOnlySpan<float> xy) => Scale(xy, (double)SourceWidth / ResizedWidth, (double)SourceHeight / ResizedHeight);

    private static float[] Scale(ReadOnlySpan<float> xy, double sx, double sy)
    {
        if (xy.Length % 2 != 0) throw new ArgumentException("coordinates come as x,y pairs");
        var result = new float[xy.Length];
        for (var i = 0; i < xy.Length; i++) result[i] = (float)(xy[i] * (i % 2 == 0 ? sx : sy));
        return result;
    }
}
