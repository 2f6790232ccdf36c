using VlaCloud.Parity;
using VlaCloud.Policy.InternVla.Imaging;
using VlaCloud.Policy.InternVla.Text;
using VlaCloud.Testing;

namespace VlaCloud.Policy.Tests.InternVla;

/// <summary>
/// <see cref="VlaPolicy.GenerateSpatial"/> for the <c>internvla-m1</c> family: Qwen's JSON answers generated after the
/// training question and parsed back into the camera's pixels.
/// </summary>
public sealed class InternVlaM1SpatialTests
{
    private const string Embodiment = "arm6";

    private static VlaPolicy Create() =>
        VlaPolicy.Create(TinyInternVlaM1.PolicyConfig(), new Dictionary<string, NormalizationStats> { [Embodiment] = Stats() }, seed: 3,
            tokenizerJson: TinyInternVlaM1.TokenizerJson());

    private static NormalizationStats Stats() => TestPolicies.IdentityStats(6, 3);

    private static CameraImage Image(int seed, int width, int height)
    {
        var pixels = new byte[width * height * 3];
        for (var i = 0; i < pixels.Length; i++) pixels[i] = (byte)((i * (seed + 3) + seed * 17) % 251);
        return new CameraImage(pixels, width, height);
    }

    /// <summary>What a perfect model's answer comes back as: the target written in the resized pixels (whole), read back.</summary>
    private static float[] RoundTrip(SpatialKind kind, float[] coordinates, ImageCoordinateMap map) =>
        QwenSpatialAnswer.Parse(QwenSpatialAnswer.Format([new SpatialItem(kind, coordinates)], map), kind, map)[0].Coordinates;

    [Fact]
    public void A_taught_answer_comes_back_from_greedy_decoding_in_the_cameras_pixels_batched_or_alone()
    {
        using var policy = Create();
        // Cameras that the processor resizes (80×60 → 84×56, 64×64 → 56×56), so the answer's pixels are not the camera's.
        var (wide, square) = (Image(1, 80, 60), Image(2, 64, 64));
        var samples = new[]
        {
            new SpatialSample([wide], SpatialPrompts.Question(SpatialKind.Box, "pick the red cube"), SpatialKind.Box, [10, 12, 50, 40]),
            new SpatialSample([square], SpatialPrompts.Question(SpatialKind.Box, "open the drawer"), SpatialKind.Box, [33, 5, 61, 27]),
            new SpatialSample([wide], SpatialPrompts.Question(SpatialKind.Point, "pick the red cube"), SpatialKind.Point, [71, 44]),
        };
        // A second camera is there to show that the question is about the first one only.
        var observations = new[]
        {
            new Observation([wide, square], "pick the red cube", null, Embodiment),
            new Observation([square], "open the drawer", null, Embodiment),
        };
        var untrained = policy.GenerateSpatial(observations, SpatialKind.Box);
        Assert.All(untrained, p => Assert.True(p.Tokens.Length <= InternVlaM1PolicyModel.AnswerTokens(SpatialKind.Box, policy.Config.MaxTrajectoryPoints)));
        Assert.All(untrained, p => Assert.NotNull(p.Text));

        var loss = TinyInternVlaM1.TeachSpatial(policy, samples);

        var boxes = policy.GenerateSpatial(observations, SpatialKind.Box);
        for (var i = 0; i < 2; i++)
        {
            var map = new ImageCoordinateMap(samples[i].Images[0].Width, samples[i].Images[0].Height, i == 0 ? 84 : 56, 56);
            Assert.Equal(QwenSpatialAnswer.Format([new SpatialItem(SpatialKind.Box, samples[i].Coordinates)], map), boxes[i].Text);
            Assert.True(boxes[i].Answered, $"answer {i}: {boxes[i].Text} (loss {loss:F4})");
            Assert.Equal(SpatialKind.Box, boxes[i].Kind);
            var expected = RoundTrip(SpatialKind.Box, samples[i].Coordinates, map);
            Assert.Equal(expected, boxes[i].Coordinates, (a, b) => Math.Abs(a - b) < 1e-3);
            Assert.All(boxes[i].Coordinates, (c, j) => Assert.InRange(c, samples[i].Coordinates[j] - 1.5f, samples[i].Coordinates[j] + 1.5f));
            Assert.Equal(2, boxes[i].Points().Count());
        }
        // Alone, the same tokens as in the batch (left padding and the cache change nothing).
        Assert.Equal(boxes[1].Tokens, policy.GenerateSpatial([observations[1]], SpatialKind.Box)[0].Tokens);

        // The point question is another prompt about the same image, and gets its own answer.
        var point = policy.GenerateSpatial([observations[0]], SpatialKind.Point)[0];
        Assert.Equal("[{\"point_2d\": [75, 41]}]", point.Text);
        Assert.Equal(RoundTrip(SpatialKind.Point, [71, 44], new ImageCoordinateMap(80, 60, 84, 56)), point.Coordinates);
        Assert.Equal([], policy.GenerateSpatial([], SpatialKind.Point));
    }

    [Theory]
    [InlineData("I cannot see a red cube here.")]
    [InlineData("")]
    [InlineData("[{\"bbox_2d\": [12, 3")]
    [InlineData("[{\"point_2d\": [12, 30]}]")]
    public void Text_holding_no_answer_of_the_kind_gives_no_coordinates_and_keeps_the_text(string text)
    {
        var map = new ImageCoordinateMap(80, 60, 84, 56);
        var prediction = InternVlaM1PolicyModel.ParseAnswer(SpatialKind.Box, text, [1, 2, 3], map, maxTrajectoryPoints: 8);
        Assert.False(prediction.Answered);
        Assert.Empty(prediction.Coordinates);
        Assert.Empty(prediction.Points());
        Assert.Equal(text, prediction.Text);
        Assert.Equal([1, 2, 3], prediction.Tokens);
    }

    [Fact]
    public void A_parsed_answer_is_the_first_item_in_the_cameras_pixels_clamped_to_its_image_and_a_trajectory_is_cut_to_the_config()
    {
        var map = new ImageCoordinateMap(80, 60, 84, 56);
        var box = InternVlaM1PolicyModel.ParseAnswer(SpatialKind.Box, "```json\n[{\"bbox_2d\": [84, 56, 42, 0], \"label\": \"cube\"}, {\"bbox_2d\": [1, 1, 2, 2]}]\n```", [], map, 8);
        Assert.Equal([40f, 0f, 80f, 60f], box.Coordinates);
        var outside = InternVlaM1PolicyModel.ParseAnswer(SpatialKind.Point, "[{\"point_2d\": [500, -7]}]", [], map, 8);
        Assert.Equal([80f, 0f], outside.Coordinates);
        var path = string.Join(", ", Enumerable.Range(0, 12).Select(i => $"[{7 * i}, 28]"));
        var trajectory = InternVlaM1PolicyModel.ParseAnswer(SpatialKind.Trajectory, $"[{path}", [], map, 8);
        Assert.Equal(8, trajectory.Points().Count());
        Assert.Equal((20f, 30f), trajectory.Points().ElementAt(3));
    }
}
