using VlaCloud.Policy;
using VlaCloud.Policy.Checkpoint;
using VlaCloud.Policy.InternVla.Imaging;

namespace VlaCloud.Parity;

/// <summary>Reads the preprocessing inputs of a fixture folder: its processor settings and its uint8 HWC images.</summary>
public static class PreprocessingFixtures
{
    /// <summary>The Qwen2.5-VL processor settings of the folder (<c>qwen25vl_tiny.preprocessor_config.json</c>).</summary>
    public const string PreprocessorConfig = "qwen25vl_tiny.preprocessor_config.json";

    /// <summary>The folder's image processor settings, or the processor's defaults when the folder has none.</summary>
    public static QwenImageProcessorConfig ProcessorConfig(string folder) =>
        File.Exists(Path.Combine(folder, PreprocessorConfig)) ? QwenImageProcessorConfig.Load(Path.Combine(folder, PreprocessorConfig)) : new QwenImageProcessorConfig();

    /// <summary>The images <c>{prefix}0_uint8_hwc</c>, <c>{prefix}1_uint8_hwc</c>, … of a fixture file, as many as it holds.</summary>
    public static List<CameraImage> Images(SafetensorsFile file, string prefix)
    {
        var images = new List<CameraImage>();
        for (var i = 0; file.Contains($"{prefix}{i}_uint8_hwc"); i++)
        {
            using var tensor = file.Read($"{prefix}{i}_uint8_hwc");
            var shape = tensor.shape;
            if (shape.Length != 3 || shape[2] != 3) throw new InvalidDataException($"{prefix}{i}_uint8_hwc is [{string.Join(", ", shape)}], not [H, W, 3]");
            images.Add(new CameraImage(tensor.data<byte>().ToArray(), (int)shape[1], (int)shape[0]));
        }
        return images;
    }
}
