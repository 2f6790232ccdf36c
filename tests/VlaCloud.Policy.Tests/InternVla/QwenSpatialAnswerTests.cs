using System.Text;
using VlaCloud.Policy.InternVla.Imaging;
using VlaCloud.Policy.InternVla.Text;

namespace VlaCloud.Policy.Tests.InternVla;

public sealed class QwenSpatialAnswerTests
{
    private static SpatialItem Box(float x1, float y1, float x2, float y2, string? label = null) => new(SpatialKind.Box, [x1, y1, x2, y2], label);
    private static SpatialItem Point(float x, float y, string? label = null) => new(SpatialKind.Point, [x, y], label);

    private static void AssertItems(IReadOnlyList<SpatialItem> expected, IReadOnlyList<SpatialItem> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Kind, actual[i].Kind);
            Assert.Equal(expected[i].Coordinates, actual[i].Coordinates);
            Assert.Equal(expected[i].Label, actual[i].Label);
        }
    }

    [Fact]
    public void Boxes_and_points_are_written_as_qwen_json_lists()
    {
        // The two spatial strings of the tokenizer fixtures (configs A and B) are written this way.
        Assert.Equal("[{\"bbox_2d\": [12, 34, 56, 78], \"label\": \"red cube\"}]", QwenSpatialAnswer.Format([Box(12, 34, 56, 78, "red cube")]));
        Assert.Equal("[{\"point_2d\": [101, 202], \"label\": \"mug\"}]", QwenSpatialAnswer.Format([Point(101, 202, "mug")]));
        Assert.Equal("[{\"bbox_2d\": [1, 2, 3, 4]}, {\"point_2d\": [5, 6], \"label\": \"a \\\"quoted\\\" café\"}]",
            QwenSpatialAnswer.Format([Box(1, 2, 3, 4), new SpatialItem(SpatialKind.Placement, [5, 6], "a \"quoted\" café")]));
        Assert.Equal("[[10, 20], [11, 22], [13, 25]]", QwenSpatialAnswer.Format([new SpatialItem(SpatialKind.Trajectory, [10, 20, 11, 22, 13, 25])]));
        Assert.Equal("[]", QwenSpatialAnswer.Format([]));
    }

    [Fact]
    public void Coordinates_are_written_in_whole_pixels()
    {
        Assert.Equal("[{\"point_2d\": [13, 0]}]", QwenSpatialAnswer.Format([Point(12.5f, -0.4f)]));
    }

    [Fact]
    public void Every_kind_round_trips_through_its_text()
    {
        IReadOnlyList<SpatialItem>[] answers =
        [
            [Box(12, 34, 56, 78, "red cube"), Box(0, 0, 224, 224, "table")],
            [Point(101, 202, "mug")],
            [new SpatialItem(SpatialKind.Placement, [7, 9], "bowl")],
            [new SpatialItem(SpatialKind.Trajectory, [10, 20, 11, 22, 13, 25])],
        ];
        foreach (var answer in answers)
            AssertItems(answer, QwenSpatialAnswer.Parse(QwenSpatialAnswer.Format(answer), answer[0].Kind));
    }

    [Fact]
    public void What_a_model_writes_around_the_json_is_skipped()
    {
        const string answer = "Sure! Here they are:\n```json\n[\n\t{\"bbox_2d\": [10, 20, 30, 40], \"label\": \"cup\"},\n\t{'bbox_2d': [5, 6, 7, 8], 'label': 'spoon'}\n]\n```\nAnything else?";
        AssertItems([Box(10, 20, 30, 40, "cup"), Box(5, 6, 7, 8, "spoon")], QwenSpatialAnswer.Parse(answer, SpatialKind.Box));
        AssertItems([Box(1, 2, 3, 4, "a"), Box(5, 6, 7, 8, "b")],
            QwenSpatialAnswer.Parse("{\"bbox_2d\": [1, 2, 3, 4], \"label\": \"a\"}\n{\"bbox\": [5, 6, 7, 8], \"label\": \"b\"}", SpatialKind.Box));
        AssertItems([Point(3.5f, 4)], QwenSpatialAnswer.Parse("The point is {\"point_2d\": [3.5, 4]}.", SpatialKind.Point));
    }

    [Fact]
    public void Output_cut_off_mid_way_keeps_the_items_completed_before_the_cut()
    {
        AssertItems([Box(1, 2, 3, 4, "a")], QwenSpatialAnswer.Parse("[{\"bbox_2d\": [1, 2, 3, 4], \"label\": \"a\"}, {\"bbox_2d\": [5, 6, 7", SpatialKind.Box));
        AssertItems([Box(1, 2, 3, 4)], QwenSpatialAnswer.Parse("[{\"bbox_2d\": [1, 2, 3, 4], \"label\": \"red cu", SpatialKind.Box));
        AssertItems([Box(1, 2, 3, 4)], QwenSpatialAnswer.Parse("{\"bbox_2d\": [1, 2, 3, 4]", SpatialKind.Box));
        // The last number may itself be cut (78 → 7), so an unclosed list is never read.
        Assert.Empty(QwenSpatialAnswer.Parse("[12, 34, 56, 7", SpatialKind.Box));
        AssertItems([new SpatialItem(SpatialKind.Trajectory, [1, 2, 3, 4])], QwenSpatialAnswer.Parse("[[1, 2], [3, 4], [5, 6", SpatialKind.Trajectory));
    }

    [Fact]
    public void Bare_coordinate_lists_are_read_when_no_keyed_object_is_there()
    {
        AssertItems([Box(12, 34, 56, 78)], QwenSpatialAnswer.Parse("[12, 34, 56, 78]", SpatialKind.Box));
        AssertItems([Point(5, 6)], QwenSpatialAnswer.Parse("the key point is [5, 6]", SpatialKind.Point));
        // Keyed objects win over stray lists.
        AssertItems([Point(1, 2, "x")], QwenSpatialAnswer.Parse("[9, 9] then [{\"point_2d\": [1, 2], \"label\": \"x\"}]", SpatialKind.Point));
        // A trajectory may also come as points.
        AssertItems([new SpatialItem(SpatialKind.Trajectory, [1, 2, 3, 4])],
            QwenSpatialAnswer.Parse("[{\"point_2d\": [1, 2]}, {\"point_2d\": [3, 4]}]", SpatialKind.Trajectory));
    }

    [Fact]
    public void Swapped_box_corners_are_put_in_order()
    {
        AssertItems([Box(10, 20, 30, 40)], QwenSpatialAnswer.Parse("[{\"bbox_2d\": [30, 40, 10, 20]}]", SpatialKind.Box));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("I cannot see any object.")]
    [InlineData("}{][,:\"\\")]
    [InlineData("[{\"bbox_2d\": \"12, 34, 56, 78\"}]")]
    [InlineData("[{\"bbox_2d\": [12, 34, 56]}]")]
    [InlineData("[{\"bbox_2d\": [1e999, 2, 3, 4]}]")]
    [InlineData("[{\"bbox_2d\": [NaN, 2, 3, 4]}]")]
    [InlineData("[{\"bbox_2d\": [x1, y1, x2, y2]}]")]
    [InlineData("[x1,y1,x2,y2]")]
    [InlineData("[- - - -]")]
    [InlineData("[1.2.3, 4, 5, 6]")]
    public void Garbage_gives_nothing(string? text)
    {
        Assert.Empty(QwenSpatialAnswer.Parse(text, SpatialKind.Box));
    }

    [Fact]
    public void Random_and_huge_inputs_never_throw_and_stay_bounded()
    {
        var random = new Random(11);
        string[] alphabet = ["[", "]", "{", "}", ",", ":", "\"", "'", "\\", "\\u12", "1", "-", ".", "e", "9", " ", "\n", "bbox_2d", "point_2d", "label", "```", "x", "\uD800", "😀"];
        for (var n = 0; n < 20_000; n++)
        {
            var text = string.Concat(Enumerable.Range(0, random.Next(0, 60)).Select(_ => alphabet[random.Next(alphabet.Length)]));
            foreach (var kind in Enum.GetValues<SpatialKind>())
                Assert.All(QwenSpatialAnswer.Parse(text, kind), item => item.Validate());
        }
        var deep = new string('[', 1 << 20);
        Assert.Empty(QwenSpatialAnswer.Parse(deep, SpatialKind.Box));
        // Nesting deeper than the reader goes ends the outer values; reading starts again inside.
        var nested = new string('[', 100) + "1, 2, 3, 4" + new string(']', 100);
        AssertItems([Box(1, 2, 3, 4)], QwenSpatialAnswer.Parse(nested, SpatialKind.Box));
        var many = new StringBuilder("[");
        for (var i = 0; i < 100_000; i++) many.Append("{\"point_2d\": [1, 2]}, ");
        Assert.Equal(QwenSpatialAnswer.MaxItems, QwenSpatialAnswer.Parse(many.ToString(), SpatialKind.Point).Count);
        Assert.Equal(2 * QwenSpatialAnswer.MaxItems, QwenSpatialAnswer.Parse(many.ToString(), SpatialKind.Trajectory).Single().Coordinates.Length);
    }

    [Fact]
    public void Coordinates_map_between_the_camera_image_and_the_model_image()
    {
        var processor = new QwenImageProcessor(new QwenImageProcessorConfig());
        var map = processor.CoordinateMap(new CameraImage(new byte[640 * 480 * 3], 640, 480));
        Assert.Equal(new ImageCoordinateMap(640, 480, 644, 476), map);
        // The whole camera image is the whole model image; a box beyond it is clamped.
        Assert.Equal("[{\"bbox_2d\": [322, 238, 644, 476], \"label\": \"cup\"}]", QwenSpatialAnswer.Format([Box(320, 240, 640, 480, "cup")], map));
        Assert.Equal("[{\"bbox_2d\": [0, 0, 644, 476]}]", QwenSpatialAnswer.Format([Box(-20, -5, 700, 500)], map));
        var back = QwenSpatialAnswer.Parse("[{\"bbox_2d\": [322, 238, 644, 476], \"label\": \"cup\"}]", SpatialKind.Box, map).Single();
        Assert.Equal([320f, 240f, 640f, 480f], back.Coordinates.Select(c => MathF.Round(c, 3)));
        Assert.Equal("cup", back.Label);
        Assert.Equal([64f, 48f], map.ToSource(map.ToResized([64f, 48f])).Select(c => MathF.Round(c, 3)));
    }

    [Fact]
    public void Invalid_items_are_refused_when_formatting()
    {
        Assert.Throws<ArgumentException>(() => QwenSpatialAnswer.Format([new SpatialItem(SpatialKind.Box, [1, 2, 3])]));
        Assert.Throws<ArgumentException>(() => QwenSpatialAnswer.Format([Point(float.NaN, 1)]));
        Assert.Throws<ArgumentException>(() => QwenSpatialAnswer.Format([new SpatialItem(SpatialKind.Trajectory, [1, 2]), Point(1, 2)]));
        Assert.Throws<ArgumentException>(() => QwenSpatialAnswer.Format([new SpatialItem(SpatialKind.Trajectory, [1, 2], "path")]));
        Assert.Throws<ArgumentException>(() => new ImageCoordinateMap(10, 10, 28, 28).ToResized([1f, 2f, 3f]));
    }

    [Fact]
    public void The_spatial_strings_of_the_tokenizer_fixture_are_formatted_answers()
    {
        var tokenizer = QwenTokenizerFiles.Tokenizer;
        var strings = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(GoldenFixtures.File("tokenizer_cases.json")))!["strings"]!.AsArray();
        var checkedStrings = 0;
        foreach (var c in strings)
        {
            var text = (string)c!["text"]!;
            var kind = text.Contains("bbox_2d", StringComparison.Ordinal) ? SpatialKind.Box : text.Contains("point_2d", StringComparison.Ordinal) ? SpatialKind.Point : (SpatialKind?)null;
            if (kind is null) continue;
            Assert.Equal(text, QwenSpatialAnswer.Format(QwenSpatialAnswer.Parse(text, kind.Value)));
            Assert.Equal(c["ids"]!.AsArray().Select(v => (int)v!), tokenizer.Encode(text));
            checkedStrings++;
        }
        Assert.True(checkedStrings > 0, "the fixture has no spatial answer string");
    }
}
