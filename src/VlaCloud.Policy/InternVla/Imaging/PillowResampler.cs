namespace VlaCloud.Policy.InternVla.Imaging;

/// <summary>Resampling filters, numbered as Pillow's <c>Image.Resampling</c> (the <c>resample</c> of a preprocessor config).</summary>
public enum PillowFilter
{
    /// <summary>Triangle filter, support 1 (torchvision's default for PIL images).</summary>
    Bilinear = 2,
    /// <summary>Keys cubic with a = −0.5, support 2 (Qwen2-VL's image processor).</summary>
    Bicubic = 3,
}

/// <summary>
/// Pillow's <c>Image.resize</c> on 8-bit images, bit for bit (Pillow 9.4 <c>libImaging/Resample.c</c>, the version
/// the fixtures ran): separable passes, horizontal then vertical, each skipped when its size does not change; the
/// kernel widened by the scale when downscaling (antialias); weights normalised in double, then rounded to 22-bit
/// fixed point; each pass rounds and clips to 0–255. A float resampler differs by whole levels.
/// </summary>
public static class PillowResampler
{
    // Resample.c: 32 bits less 8 for the value and 2 for overshoot of negative lobes.
    private const int PrecisionBits = 32 - 8 - 2;

    /// <summary>The image resized to <paramref name="width"/>×<paramref name="height"/>.</summary>
    /// <exception cref="ArgumentException">The image is invalid or the size is not positive.</exception>
    public static CameraImage Resize(CameraImage image, int width, int height, PillowFilter filter)
    {
        image.Validate();
        return new CameraImage(Resize(image.Rgb, image.Width, image.Height, 3, width, height, filter), width, height);
    }

    /// <summary>
    /// Resizes interleaved 8-bit pixels (<paramref name="channels"/> per pixel, rows top to bottom) to
    /// <paramref name="newWidth"/>×<paramref name="newHeight"/>.
    /// </summary>
    public static byte[] Resize(ReadOnlySpan<byte> pixels, int width, int height, int channels, int newWidth, int newHeight, PillowFilter filter)
    {
        if (width <= 0 || height <= 0 || channels <= 0) throw new ArgumentException($"image size {width}×{height}×{channels} is not positive");
        if (pixels.Length != (long)width * height * channels) throw new ArgumentException($"{width}×{height}×{channels} needs {(long)width * height * channels} bytes, got {pixels.Length}");
        if (newWidth <= 0 || newHeight <= 0) throw new ArgumentException($"target size {newWidth}×{newHeight} is not positive (Pillow: height and width must be > 0)");
        var (kernel, support) = filter switch
        {
            PillowFilter.Bilinear => ((Func<double, double>)Bilinear, 1.0),
            PillowFilter.Bicubic => (Bicubic, 2.0),
            _ => throw new ArgumentException($"resampling filter {filter} is not supported (bilinear or bicubic)", nameof(filter)),
        };
        // Pillow returns a copy when nothing changes.
        if (newWidth == width && newHeight == height) return pixels.ToArray();

        var horizontal = Coefficients(width, newWidth, kernel, support);
        var vertical = Coefficients(height, newHeight, kernel, support);
        var source = pixels.ToArray();
        var sourceWidth = width;
        var rowOffset = 0;
        if (newWidth != width)
        {
            // Only the rows the vertical pass reads.
            var first = vertical.Bounds[0];
            var last = vertical.Bounds[2 * (newHeight - 1)] + vertical.Bounds[2 * (newHeight - 1) + 1];
            source = ResampleHorizontal(source, width, channels, first, last - first, newWidth, horizontal);
            sourceWidth = newWidth;
            rowOffset = first;
        }
        if (newHeight == height) return source;
        return ResampleVertical(source, sourceWidth, channels, rowOffset, newHeight, vertical);
    }

    /// <summary>Per output pixel: the first input index and the number of taps, and their fixed-point weights.</summary>
    private sealed record Taps(int[] Bounds, int[] Weights, int KernelSize);

    /// <summary>precompute_coeffs + normalize_coeffs_8bpc, with the same operations in the same order.</summary>
    private static Taps Coefficients(int inSize, int outSize, Func<double, double> filter, double filterSupport)
    {
        // Pillow keeps the box in floats; whole sizes below 2^24 are exact.
        var scale = (double)((float)inSize - 0f) / outSize;
        var filterScale = Math.Max(scale, 1.0);
        var support = filterSupport * filterScale;
        var kernelSize = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[outSize * 2];
        var weights = new int[outSize * kernelSize];
        var k = new double[kernelSize];
        for (var xx = 0; xx < outSize; xx++)
        {
            var center = 0f + (xx + 0.5) * scale;
            var ww = 0.0;
            var ss = 1.0 / filterScale;
            var xmin = (int)(center - support + 0.5);
            if (xmin < 0) xmin = 0;
            var xmax = (int)(center + support + 0.5);
            if (xmax > inSize) xmax = inSize;
            xmax -= xmin;
            for (var x = 0; x < xmax; x++)
            {
                var w = filter((x + xmin - center + 0.5) * ss);
                k[x] = w;
                ww += w;
            }
            for (var x = 0; x < xmax; x++)
            {
                if (ww != 0.0) k[x] /= ww;
                var v = k[x] * (1 << PrecisionBits);
                weights[xx * kernelSize + x] = k[x] < 0 ? (int)(-0.5 + v) : (int)(0.5 + v);
            }
            bounds[xx * 2] = xmin;
            bounds[xx * 2 + 1] = xmax;
        }
        return new Taps(bounds, weights, kernelSize);
    }

    private static byte[] ResampleHorizontal(byte[] input, int inWidth, int channels, int firstRow, int rows, int outWidth, Taps taps)
    {
        var output = new byte[rows * outWidth * channels];
        for (var y = 0; y < rows; y++)
        {
            var inRow = (y + firstRow) * inWidth * channels;
            var outRow = y * outWidth * channels;
            for (var xx = 0; xx < outWidth; xx++)
            {
                var xmin = taps.Bounds[xx * 2];
                var xmax = taps.Bounds[xx * 2 + 1];
                var weights = taps.Weights.AsSpan(xx * taps.KernelSize, taps.KernelSize);
                for (var c = 0; c < channels; c++)
                {
                    var sum = 1 << (PrecisionBits - 1);
                    for (var x = 0; x < xmax; x++) sum += input[inRow + (x + xmin) * channels + c] * weights[x];
                    output[outRow + xx * channels + c] = Clip8(sum);
                }
            }
        }
        return output;
    }

    private static byte[] ResampleVertical(byte[] input, int width, int channels, int rowOffset, int outHeight, Taps taps)
    {
        var output = new byte[outHeight * width * channels];
        var stride = width * channels;
        for (var yy = 0; yy < outHeight; yy++)
        {
            var ymin = taps.Bounds[yy * 2] - rowOffset;
            var ymax = taps.Bounds[yy * 2 + 1];
            var weights = taps.Weights.AsSpan(yy * taps.KernelSize, taps.KernelSize);
            for (var i = 0; i < stride; i++)
            {
                var sum = 1 << (PrecisionBits - 1);
                for (var y = 0; y < ymax; y++) sum += input[(y + ymin) * stride + i] * weights[y];
                output[yy * stride + i] = Clip8(sum);
            }
        }
        return output;
    }

    /// <summary>Pillow's clip8: the fixed-point sum shifted down, clamped to a byte.</summary>
    private static byte Clip8(int sum) => (byte)Math.Clamp(sum >> PrecisionBits, 0, 255);

    private static double Bilinear(double x)
    {
        if (x < 0.0) x = -x;
        return x < 1.0 ? 1.0 - x : 0.0;
    }

    private static double Bicubic(double x)
    {
        const double a = -0.5;
        if (x < 0.0) x = -x;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }
}
