using VlaCloud.Testing;

namespace VlaCloud.Policy.Tests;

/// <summary>Small synthetic inputs for the tiny config: coloured squares on a grey table.</summary>
internal static class TestData
{
    public const string Arm = "arm7";
    public const string Gripper = "gripper3";

    /// <summary>7-dim arm (last dim a binary gripper) with an 8-dim state, and a 3-dim embodiment without state statistics.</summary>
    public static Dictionary<string, NormalizationStats> Stats() => new()
    {
        [Arm] = new NormalizationStats(
            new FeatureStats([0, 0, 0, 0, 0, 0, 0.5f], [1, 1, 1, 1, 1, 1, 0.5f], [-1, -1, -1, -2, -2, -2, 0], [1, 1, 1, 2, 2, 2, 1]),
            TestPolicies.IdentityFeature(8),
            BinaryActionDims: [6]),
        [Gripper] = new NormalizationStats(new FeatureStats([0, 0, 0], [1, 1, 1], [-0.5f, -0.5f, -0.5f], [0.5f, 0.5f, 0.5f])),
    };

    public static VlaPolicy Tiny(long seed = 1, PolicyConfig? config = null) => VlaPolicy.Create(config ?? PolicyConfig.Tiny, Stats(), seed);

    public static CameraImage Image(int x, int y, (byte R, byte G, byte B) colour, int size = 64, int square = 12)
    {
        var rgb = new byte[size * size * 3];
        for (var r = 0; r < size; r++)
        for (var c = 0; c < size; c++)
        {
            var inside = c >= x && c < x + square && r >= y && r < y + square;
            var o = (r * size + c) * 3;
            (rgb[o], rgb[o + 1], rgb[o + 2]) = inside ? colour : ((byte)120, (byte)120, (byte)120);
        }
        return new CameraImage(rgb, size, size);
    }

    public static readonly (byte, byte, byte) Red = (220, 30, 30), Blue = (30, 30, 220), Green = (30, 200, 30);

    public static Observation Observation(int i, string? embodiment = Arm) => new(
        [Image(4 + 9 * (i % 5), 40 - 7 * (i % 4), i % 2 == 0 ? Red : Blue), Image(50 - 6 * (i % 6), 8, Green, size: 48, square: 8)],
        i % 3 == 0 ? "pick the red cube and place it in the blue bowl" : i % 3 == 1 ? "push the green ball to the yellow square" : "put the blue block on the plate",
        embodiment == Arm ? Enumerable.Range(0, 8).Select(d => MathF.Sin(i + d)).ToArray() : null,
        embodiment);
}
