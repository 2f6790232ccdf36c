using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace VlaCloud.Policy.InternVla.Imaging;

/// <summary>
/// Settings of Qwen2-VL's slow image processor (<c>preprocessor_config.json</c>, <c>Qwen2VLImageProcessor</c>), with
/// its defaults where the file leaves a field out.
/// </summary>
public sealed record QwenImageProcessorConfig
{
    /// <summary>Smallest resized area (<c>min_pixels</c>).</summary>
    public long MinPixels { get; init; } = 56 * 56;
    /// <summary>Largest resized area (<c>max_pixels</c>).</summary>
    public long MaxPixels { get; init; } = 28 * 28 * 1280;
    /// <summary>Patch side in pixels (<c>patch_size</c>).</summary>
    public int PatchSize { get; init; } = 14;
    /// <summary>Patches per side merged into one LM token (<c>merge_size</c>).</summary>
    public int MergeSize { get; init; } = 2;
    /// <summary>Frames per patch (<c>temporal_patch_size</c>): an image is repeated to fill them.</summary>
    public int TemporalPatchSize { get; init; } = 2;
    /// <summary>Whether images are resized by <see cref="SmartResize"/> (<c>do_resize</c>).</summary>
    public bool DoResize { get; init; } = true;
    /// <summary>Resampling filter (<c>resample</c>, Pillow's numbering).</summary>
    public PillowFilter Resample { get; init; } = PillowFilter.Bicubic;
    /// <summary>Whether values are multiplied by <see cref="RescaleFactor"/> (<c>do_rescale</c>).</summary>
    public bool DoRescale { get; init; } = true;
    /// <summary>Value scale (<c>rescale_factor</c>).</summary>
    public double RescaleFactor { get; init; } = 1 / 255.0;
    /// <summary>Whether values are normalised by <see cref="ImageMean"/> and <see cref="ImageStd"/> (<c>do_normalize</c>).</summary>
    public bool DoNormalize { get; init; } = true;
    /// <summary>Per-channel mean (<c>image_mean</c>; CLIP's by default).</summary>
    public IReadOnlyList<double> ImageMean { get; init; } = [0.48145466, 0.4578275, 0.40821073];
    /// <summary>Per-channel standard deviation (<c>image_std</c>; CLIP's by default).</summary>
    public IReadOnlyList<double> ImageStd { get; init; } = [0.26862954, 0.26130258, 0.27577711];

    /// <summary>Side length both resized sides are multiples of: patch × merge (28).</summary>
    public int Factor => PatchSize * MergeSize;

    /// <summary>Reads <c>preprocessor_config.json</c>.</summary>
    public static QwenImageProcessorConfig Load(string path) => FromJson(File.ReadAllText(path));

    /// <summary>
    /// Parses a preprocessor config. The area limits are <c>min_pixels</c>/<c>max_pixels</c> or the defaults: the
    /// processor's constructor at the pinned revision replaces any valid <c>size</c> with its defaults before applying
    /// them, so <c>size</c> never counts.
    /// </summary>
    public static QwenImageProcessorConfig FromJson(string json)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(json) as JsonObject ?? throw new InvalidDataException("the preprocessor config is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"the preprocessor config is not valid JSON: {e.Message}", e);
        }
        var defaults = new QwenImageProcessorConfig();
        T? Field<T>(string key) where T : struct => root[key] switch
        {
            null => null,
            JsonValue v when v.TryGetValue<T>(out var value) => value,
            _ => throw new InvalidDataException($"{key} in the preprocessor config is not a {typeof(T).Name}"),
        };
        var resample = Field<int>("resample") ?? (int)defaults.Resample;
        if (!Enum.IsDefined((PillowFilter)resample)) throw new InvalidDataException($"resample {resample} is not bilinear (2) or bicubic (3)");
        var config = new QwenImageProcessorConfig
        {
            MinPixels = Field<long>("min_pixels") ?? defaults.MinPixels,
            MaxPixels = Field<long>("max_pixels") ?? defaults.MaxPixels,
            PatchSize = Field<int>("patch_size") ?? defaults.PatchSize,
            MergeSize = Field<int>("merge_size") ?? defaults.MergeSize,
            TemporalPatchSize = Field<int>("temporal_patch_size") ?? defaults.TemporalPatchSize,
            DoResize = Field<bool>("do_resize") ?? defaults.DoResize,
            Resample = (PillowFilter)resample,
            DoRescale = Field<bool>("do_rescale") ?? defaults.DoRescale,
            RescaleFactor = Field<double>("rescale_factor") ?? defaults.RescaleFactor,
            DoNormalize = Field<bool>("do_normalize") ?? defaults.DoNormalize,
            ImageMean = Channels(root["image_mean"], "image_mean") ?? defaults.ImageMean,
            ImageStd = Channels(root["image_std"], "image_std") ?? defaults.ImageStd,
        };
        if (config.PatchSize <= 0 || config.MergeSize <= 0 || config.TemporalPatchSize <= 0 || config.MinPixels < 0 || config.MaxPixels <= 0)
            throw new InvalidDataException("patch_size, merge_size, temporal_patch_size and max_pixels must be positive, min_pixels not negative");
        if (config.ImageStd.Any(s => s == 0)) throw new InvalidDataException("image_std has a zero");
        if (config.ImageMean.Count != 3 || config.ImageStd.Count != 3)
            throw new InvalidDataException("image_mean and image_std need one value per RGB channel");
        return config;
    }

    private static IReadOnlyList<double>? Channels(JsonNode? node, string key)
    {
        static double Number(JsonNode? n, string key) =>
            n is JsonValue v && v.TryGetValue<double>(out var d) ? d : throw new InvalidDataException($"{key} in the preprocessor config holds something other than numbers");
        return node switch
        {
            null => null,
            JsonArray a => [.. a.Select(v => Number(v, key))],
            _ => [.. Enumerable.Repeat(Number(node, key), 3)],
        };
    }
}

/// <summary>An image's patch grid: frames × rows × columns of patches (<c>image_grid_thw</c>).</summary>
/// <param name="T">Temporal patches (1 for an image).</param>
/// <param name="H">Patch rows.</param>
/// <param name="W">Patch columns.</param>
public readonly record struct ImageGrid(int T, int H, int W)
{
    /// <summary>Patches (rows of <c>pixel_values</c>).</summary>
    public int Patches => T * H * W;

    /// <summary>LM tokens after the merger: <c>t·h·w / merge²</c>, the count of <c>&lt;|image_pad|&gt;</c> for this image.</summary>
    public int Tokens(int mergeSize) => Patches / (mergeSize * mergeSize);
}

/// <summary>The processor's output for several images: their patches one after another and each image's grid.</summary>
/// <param name="PixelValues"><c>pixel_values</c>: [Σ patches, channels · temporal · patch²].</param>
/// <param name="Grids">Each image's grid, in order.</param>
/// <param name="Sizes">Each image's resized (height, width): the pixels spatial answers are given in.</param>
public sealed record QwenImageBatch(PixelArray PixelValues, IReadOnlyList<ImageGrid> Grids, IReadOnlyList<(int Height, int Width)> Sizes)
{
    /// <summary><c>image_grid_thw</c> as an int64 tensor [images, 3] (the caller owns it).</summary>
    public Tensor GridThwTensor() =>
        tensor(Grids.SelectMany(g => new long[] { g.T, g.H, g.W }).ToArray(), [Grids.Count, 3], ScalarType.Int64);
}

/// <summary>
/// Qwen2-VL's slow image processor (<c>Qwen2VLImageProcessor</c> at the fixtures' transformers revision), the one
/// InternVLA-M1 runs: each image on its own is resized by <see cref="SmartResize"/> with Pillow's resampler, rescaled,
/// normalised in float32, repeated to fill a temporal patch, and cut into rows of
/// <c>channels · temporal · patch²</c> values, ordered so that each <c>merge × merge</c> block of patches is contiguous.
/// </summary>
public sealed class QwenImageProcessor(QwenImageProcessorConfig config)
{
    /// <summary>The settings.</summary>
    public QwenImageProcessorConfig Config { get; } = config;

    /// <summary>The size an image of this size is resized to (height, width).</summary>
    /// <exception cref="ArgumentException">Upstream's smart_resize errors (too small, too elongated).</exception>
    public (int Height, int Width) ResizedSize(int height, int width) =>
        Config.DoResize ? SmartResize.Compute(height, width, Config.Factor, Config.MinPixels, Config.MaxPixels) : (height, width);

    /// <summary>The grid of an image of this size.</summary>
    public ImageGrid GridFor(int height, int width)
    {
        var (h, w) = ResizedSize(height, width);
        if (h % Config.Factor != 0 || w % Config.Factor != 0)
            throw new ArgumentException($"an image of {h}×{w} is not a whole number of {Config.Factor}-pixel blocks (do_resize is off)");
        return new ImageGrid(1, h / Config.PatchSize, w / Config.PatchSize);
    }

    /// <summary>The <c>&lt;|image_pad|&gt;</c> count of an image of this size.</summary>
    public int TokensFor(int height, int width) => GridFor(height, width).Tokens(Config.MergeSize);

    /// <summary>The mapping between an image's own pixels and the resized pixels spatial answers use.</summary>
    public ImageCoordinateMap CoordinateMap(CameraImage image)
    {
        var (h, w) = ResizedSize(image.Height, image.Width);
        return new ImageCoordinateMap(image.Width, image.Height, w, h);
    }

    /// <summary><c>processor(images=…)</c>: the patches of every image, one image after another.</summary>
    /// <exception cref="ArgumentException">An image is invalid or cannot be resized (see <see cref="SmartResize"/>).</exception>
    public QwenImageBatch Process(IReadOnlyList<CameraImage> images)
    {
        var grids = new List<ImageGrid>();
        var sizes = new List<(int, int)>();
        var rows = new List<float[]>();
        foreach (var image in images)
        {
            image.Validate();
            var grid = GridFor(image.Height, image.Width);
            var (h, w) = (grid.H * Config.PatchSize, grid.W * Config.PatchSize);
            var resized = (h, w) == (image.Height, image.Width) ? image.Rgb : PillowResampler.Resize(image, w, h, Config.Resample).Rgb;
            rows.Add(Patchify(Normalize(resized), h, w));
            grids.Add(grid);
            sizes.Add((h, w));
        }
        var patchValues = 3 * Config.TemporalPatchSize * Config.PatchSize * Config.PatchSize;
        var values = new float[rows.Sum(r => (long)r.Length)];
        var offset = 0;
        foreach (var r in rows)
        {
            r.CopyTo(values, offset);
            offset += r.Length;
        }
        return new QwenImageBatch(new PixelArray(values, [values.Length / patchValues, patchValues]), grids, sizes);
    }

    /// <summary>
    /// HWC bytes → HWC float32 as transformers does it: <c>(float32)(pixel · rescale_factor)</c> computed in float64,
    /// then <c>(x − mean) / std</c> in float32.
    /// </summary>
    private float[] Normalize(byte[] rgb)
    {
        var mean = Config.ImageMean.Select(m => (float)m).ToArray();
        var std = Config.ImageStd.Select(s => (float)s).ToArray();
        var values = new float[rgb.Length];
        for (var i = 0; i < rgb.Length; i++)
        {
            var v = Config.DoRescale ? (float)(rgb[i] * Config.RescaleFactor) : rgb[i];
            values[i] = Config.DoNormalize ? (v - mean[i % 3]) / std[i % 3] : v;
        }
        return values;
    }

    /// <summary>
    /// The patch rows of one image (HWC float values): the frames are the image repeated <c>temporal</c> times; rows
    /// run over merge blocks, then patches within a block; each row holds channel, frame, y, x (upstream's reshape to
    /// (t, tp, c, h/m, m, p, w/m, m, p) and transpose (0, 3, 6, 4, 7, 2, 1, 5, 8)).
    /// </summary>
    private float[] Patchify(float[] hwc, int height, int width)
    {
        int p = Config.PatchSize, m = Config.MergeSize, tp = Config.TemporalPatchSize;
        int gh = height / p, gw = width / p;
        var rowLength = 3 * tp * p * p;
        var patches = new float[gh * gw * rowLength];
        var row = 0;
        for (var bh = 0; bh < gh / m; bh++)
            for (var bw = 0; bw < gw / m; bw++)
                for (var mh = 0; mh < m; mh++)
                    for (var mw = 0; mw < m; mw++, row++)
                    {
                        var y0 = (bh * m + mh) * p;
                        var x0 = (bw * m + mw) * p;
                        var k = row * rowLength;
                        for (var c = 0; c < 3; c++)
                            for (var t = 0; t < tp; t++)
                                for (var y = 0; y < p; y++)
                                    for (var x = 0; x < p; x++)
                                        patches[k++] = hwc[((y0 + y) * width + x0 + x) * 3 + c];
                    }
        return patches;
    }
}
