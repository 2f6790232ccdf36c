using VlaCloud.Policy;
using VlaCloud.Testing;

namespace VlaCloud.Inference.Tests;

/// <summary>Tiny policies saved as real checkpoint folders, shared by the tests of one class.</summary>
public sealed class TinyCheckpoints : IDisposable
{
    public const string Embodiment = "test-arm";
    public const int ActionDim = 4;
    public const int StateDim = 3;

    public TinyCheckpoints()
    {
        Root = Directory.CreateTempSubdirectory("vlacloud-ckpt-").FullName;
        foreach (var (name, seed) in new[] { ("a", 1L), ("b", 2L) })
        {
            using var policy = VlaPolicy.Create(PolicyConfig.Tiny, new Dictionary<string, NormalizationStats> { [Embodiment] = Stats() }, seed);
            policy.Save(Path.Combine(Root, name));
        }
    }

    public string Root { get; }

    public VlaPolicy Load(string name) => VlaPolicy.Load(Path.Combine(Root, name));

    public static Observation Observation(int variant) =>
        new([Image(variant)], variant % 2 == 0 ? "pick the red cube and place it in the blue bowl" : "push the green ball to the yellow square",
            [0.1f * variant, -0.2f, 0.3f], Embodiment);

    private static CameraImage Image(int variant)
    {
        var side = PolicyConfig.Tiny.ImageSize;
        var pixels = new byte[side * side * 3];
        for (var i = 0; i < pixels.Length; i++) pixels[i] = (byte)((i * (variant + 3)) % 251);
        return new CameraImage(pixels, side, side);
    }

    private static NormalizationStats Stats() => TestPolicies.IdentityStats(ActionDim, StateDim);

    public void Dispose() => Directory.Delete(Root, recursive: true);
}
