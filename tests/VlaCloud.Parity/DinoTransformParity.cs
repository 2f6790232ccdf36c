using VlaCloud.Policy.InternVla.Imaging;
using static TorchSharp.torch;

namespace VlaCloud.Parity;

/// <summary>
/// InternVLA-M1's DINO preprocessing (<c>prepare_dino_input</c> of one sample holding the fixture's views
/// <c>view0_uint8_hwc</c>, <c>view1_uint8_hwc</c>, …): <c>prepared_input</c> within 1e-4.
/// </summary>
public sealed class DinoTransformParity : IParityCheck
{
    private const string Io = "dino_tiny.io.safetensors";

    /// <inheritdoc />
    public string Name => "dino_transform";

    /// <inheritdoc />
    public bool AppliesTo(string folder)
    {
        if (!File.Exists(Path.Combine(folder, Io))) return false;
        using var io = ParityChecks.Open(folder, Io);
        return io.Contains("view0_uint8_hwc") && io.Contains("prepared_input");
    }

    /// <inheritdoc />
    public IEnumerable<ParityResult> Run(string folder)
    {
        using var io = ParityChecks.Open(folder, Io);
        var prepared = new DinoTransform().Prepare([PreprocessingFixtures.Images(io, "view")]);
        using var scope = NewDisposeScope();
        return [ParityResult.Compare("prepared_input", prepared.ToTensor(), io.Read("prepared_input"))];
    }
}
