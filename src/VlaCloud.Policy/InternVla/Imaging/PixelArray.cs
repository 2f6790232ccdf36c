using static TorchSharp.torch;

namespace VlaCloud.Policy.InternVla.Imaging;

/// <summary>
/// Preprocessed pixels as a plain array (row-major over <see cref="Shape"/>): what leaves preprocessing, which may run
/// on any thread; the device worker turns it into a tensor (tensors never cross an await).
/// </summary>
/// <param name="Values">The values, row-major.</param>
/// <param name="Shape">The dimensions.</param>
public sealed record PixelArray(float[] Values, long[] Shape)
{
    /// <summary>A float32 tensor of <see cref="Shape"/> on the CPU (the caller owns it).</summary>
    public Tensor ToTensor() => tensor(Values, Shape, ScalarType.Float32);
}
