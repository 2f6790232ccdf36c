using VlaCloud.Policy.InternVla.Imaging;
using static TorchSharp.torch;

namespace VlaCloud.Parity;

/// <summary>
/// Qwen2-VL's slow image processor on the fixture's uint8 source images (<c>image0_uint8_hwc</c>, …, odd sizes) with the
/// folder's <c>preprocessor_config.json</c>: <c>pixel_values</c> within 1e-4 (Pillow-exact resizing makes them
/// equal to float rounding) and <c>image_grid_thw</c> identical.
/// </summary>
public sealed class ImageProcessorParity : IParityCheck
{
    private const string Io = "qwen25vl_tiny.io.safetensors";

    /// <inheritdoc />
    public string Name => "image_processor";

    /// <inheritdoc />
    public bool AppliesTo(string folder)
    {
        if (!File.Exists(Path.Combine(folder, Io))) return false;
        using var io = ParityChecks.Open(folder, Io);
        return io.Contains("image0_uint8_hwc") && io.Contains("pixel_values") && io.Contains("image_grid_thw");
    }

    /// <inheritdoc />
    public IEnumerable<ParityResult> Run(string folder)
    {
        var processor = new QwenImageProcessor(PreprocessingFixtures.ProcessorConfig(folder));
        using var io = ParityChecks.Open(folder, Io);
        var batch = processor.Process(PreprocessingFixtures.Images(io, "image"));
        using var scope = NewDisposeScope();
        var grids = io.Read("image_grid_thw");
        return
        [
            ParityResult.Compare("pixel_values", batch.PixelValues.ToTensor(), io.Read("pixel_values")),
            ParityResult.CompareExact("image_grid_thw", batch.Grids.SelectMany(g => new long[] { g.T, g.H, g.W }).ToList(), grids.data<long>().ToArray()),
        ];
    }
}
