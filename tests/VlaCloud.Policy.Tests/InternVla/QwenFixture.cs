using VlaCloud.Policy.Checkpoint;
using VlaCloud.Policy.InternVla.Qwen;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Tests.InternVla;

/// <summary>The Qwen2.5-VL golden fixture (<c>qwen25vl_tiny.*</c>) of <see cref="GoldenFixtures.InternVlaM1"/>, and scratch folders.</summary>
internal static class QwenFixture
{
    public static string ConfigPath => GoldenFixtures.File("qwen25vl_tiny.config.json");
    public static string WeightsPath => GoldenFixtures.File("qwen25vl_tiny.safetensors");
    /// <summary>
    /// keys.json (the full-size names and shapes): the fixture folder's, or the repository's when the folder is a
    /// small variant made without it.
    /// </summary>
    public static string KeysPath => File.Exists(GoldenFixtures.File("keys.json"))
        ? GoldenFixtures.File("keys.json")
        : Path.Combine(GoldenFixtures.RepositoryRoot, "tests", "fixtures", "internvla-m1", "keys.json");

    public static Qwen25VlConfig Config() => Qwen25VlConfig.Read(ConfigPath);

    /// <summary>The fixture weights through the hub loader, on the CPU in float32 unless told otherwise.</summary>
    public static Qwen25Vl Load(Qwen25VlConfig? config = null, ScalarType? dtype = null) =>
        Qwen25VlCheckpoint.Load(config ?? Config(), [WeightsPath], CPU, dtype ?? float32);

    public static SafetensorsFile Io() => SafetensorsFile.Open(GoldenFixtures.File("qwen25vl_tiny.io.safetensors"));

    /// <summary>The fixture's left-padded batch of two prompts, one image each.</summary>
    public static QwenInputs Inputs(SafetensorsFile io) => new(io.Read("input_ids"), io.Read("attention_mask"), io.Read("pixel_values"), io.Read("image_grid_thw"));

    /// <summary>Same shape and every value equal (TorchSharp's <c>equal</c> is element-wise).</summary>
    public static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    /// <summary>A fresh folder under the temp directory, deleted by <see cref="ScratchFolder.Dispose"/>.</summary>
    public static ScratchFolder Scratch() => new(Directory.CreateTempSubdirectory("vlacloud-qwen-").FullName);
}

internal sealed class ScratchFolder(string path) : IDisposable
{
    public string Path { get; } = path;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
