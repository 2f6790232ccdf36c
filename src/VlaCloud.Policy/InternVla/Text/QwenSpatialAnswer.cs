using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using VlaCloud.Policy.InternVla.Imaging;

namespace VlaCloud.Policy.InternVla.Text;

/// <summary>
/// One grounded object of a spatial answer, in pixels: a box <c>[x1, y1, x2, y2]</c>, a point or placement
/// <c>[x, y]</c>, or a trajectory <c>[x, y, x, y, …]</c>, with an optional label.
/// </summary>
/// <param name="Kind">What the coordinates describe.</param>
/// <param name="Coordinates">x,y pairs: 4 values for a box, 2 for a point or placement, 2·n for a trajectory.</param>
/// <param name="Label">The object's name (boxes and points only).</param>
public sealed record SpatialItem(SpatialKind Kind, float[] Coordinates, string? Label = null)
{
    /// <summary>Throws when the coordinates do not fit the kind or are not finite.</summary>
    public void Validate()
    {
        var ok = Kind switch
        {
            SpatialKind.Box => Coordinates.Length == 4,
            SpatialKind.Point or SpatialKind.Placement => Coordinates.Length == 2,
            _ => Coordinates.Length >= 2 && Coordinates.Length % 2 == 0,
        };
        if (!ok) throw new ArgumentException($"a {SpatialPrompts.WireName(Kind)} needs {(Kind == SpatialKind.Box ? "4" : Kind == SpatialKind.Trajectory ? "2·n" : "2")} coordinates, got {Coordinates.Length}");
        if (Coordinates.Any(c => !float.IsFinite(c))) throw new ArgumentException($"a {SpatialPrompts.WireName(Kind)} has a coordinate that is not a finite number");
        if (Kind == SpatialKind.Trajectory && Label is not null) throw new ArgumentException("a trajectory is written as a bare list of points and has no label");
    }
}

/// <summary>
/// Spatial answers as Qwen2.5-VL writes them: JSON text in absolute pixels of the image the model sees (after
/// <see cref="SmartResize"/>). Boxes are <c>{"bbox_2d": [x1, y1, x2, y2], "label": "…"}</c>, points (and placements)
/// <c>{"point_2d": [x, y], "label": "…"}</c>, in a list even when there is one; a trajectory is the list of its
/// points <c>[[x, y], [x, y], …]</c>, as the trajectory question asks ("a list of [x,y] points"). Formatting writes
/// the training targets; parsing reads what a model emits, leniently, and returns nothing rather than throwing.
/// </summary>
public static class QwenSpatialAnswer
{
    /// <summary>Parsing reads at most this many characters of an answer (generation is bounded far below it).</summary>
    public const int MaxAnswerLength = 1 << 16;

    /// <summary>Parsing returns at most this many items (and a trajectory at most this many points).</summary>
    public const int MaxItems = 256;

    private static readonly JsonSerializerOptions LabelJson = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// The answer text for items already in the model's pixels, coordinates rounded to whole pixels:
    /// <c>[{"bbox_2d": [12, 34, 56, 78], "label": "red cube"}]</c>. A trajectory must be the only item.
    /// </summary>
    /// <exception cref="ArgumentException">An item is invalid, or a trajectory is mixed with other items.</exception>
    public static string Format(IReadOnlyList<SpatialItem> items)
    {
        foreach (var item in items) item.Validate();
        if (items.Any(i => i.Kind == SpatialKind.Trajectory))
        {
            if (items.Count != 1) throw new ArgumentException("a trajectory answer holds one trajectory and nothing else", nameof(items));
            var c = items[0].Coordinates;
            return "[" + string.Join(", ", Enumerable.Range(0, c.Length / 2).Select(i => $"[{Whole(c[2 * i])}, {Whole(c[2 * i + 1])}]")) + "]";
        }
        var text = new StringBuilder("[");
        foreach (var item in items)
        {
            if (text.Length > 1) text.Append(", ");
            text.Append(item.Kind == SpatialKind.Box ? "{\"bbox_2d\": [" : "{\"point_2d\": [")
                .Append(string.Join(", ", item.Coordinates.Select(Whole))).Append(']');
            if (item.Label is not null) text.Append(", \"label\": ").Append(JsonSerializer.Serialize(item.Label, LabelJson));
            text.Append('}');
        }
        return text.Append(']').ToString();
    }

    /// <summary>
    /// The answer text for items given in the camera image's pixels: mapped to the model's pixels, clamped to the
    /// image and rounded.
    /// </summary>
    public static string Format(IReadOnlyList<SpatialItem> items, ImageCoordinateMap map)
    {
        foreach (var item in items) item.Validate();
        return Format([.. items.Select(i => i with { Coordinates = Clamp(map.ToResized(i.Coordinates), map.ResizedWidth, map.ResizedHeight) })]);
    }

    /// <summary>
    /// The items of <paramref name="kind"/> in a model's answer, in the model's pixels. Accepted: code fences and prose
    /// around the JSON, single quotes, several lists or bare objects, <c>bbox</c>/<c>point</c> for the keys, and bare
    /// coordinate lists (<c>[x1, y1, x2, y2]</c>, <c>[x, y]</c>) when no keyed object is found. A trajectory is every
    /// <c>[x, y]</c> in order. Output cut off mid-way keeps the items completed before the cut. Boxes come out with
    /// x1 ≤ x2 and y1 ≤ y2. Garbage gives an empty list; this never throws.
    /// </summary>
    public static IReadOnlyList<SpatialItem> Parse(string? text, SpatialKind kind)
    {
        if (string.IsNullOrEmpty(text)) return [];
        var values = LenientJson.ReadAll(text.Length > MaxAnswerLength ? text[..MaxAnswerLength] : text);
        var nodes = values.SelectMany(Walk).ToList();
        if (kind == SpatialKind.Trajectory)
        {
            var points = nodes.OfType<LenientJson.ArrayNode>().Select(a => Numbers(a, 2)).OfType<float[]>().Take(MaxItems).ToList();
            return points.Count == 0 ? [] : [new SpatialItem(SpatialKind.Trajectory, [.. points.SelectMany(p => p)])];
        }
        var (arity, keys) = kind == SpatialKind.Box ? (4, new[] { "bbox_2d", "bbox" }) : (2, new[] { "point_2d", "point" });
        var keyed = nodes.OfType<LenientJson.ObjectNode>().SelectMany(o => o.Members
                .Where(m => keys.Contains(m.Key, StringComparer.OrdinalIgnoreCase) && m.Value is LenientJson.ArrayNode)
                .Select(m => Numbers((LenientJson.ArrayNode)m.Value, arity))
                .OfType<float[]>()
                .Select(c => new SpatialItem(kind, c, Label(o))))
            .Take(MaxItems).ToList();
        var items = keyed.Count > 0 ? keyed
            : [.. nodes.OfType<LenientJson.ArrayNode>().Select(a => Numbers(a, arity)).OfType<float[]>().Take(MaxItems).Select(c => new SpatialItem(kind, c))];
        return kind == SpatialKind.Box ? [.. items.Select(Ordered)] : items;
    }

    /// <summary>
    /// <see cref="Parse(string?, SpatialKind)"/>, with the coordinates mapped back to the camera image's pixels.
    /// </summary>
    public static IReadOnlyList<SpatialItem> Parse(string? text, SpatialKind kind, ImageCoordinateMap map) =>
        [.. Parse(text, kind).Select(i => i with { Coordinates = map.ToSource(i.Coordinates) })];

    /// <summary>Every node in document order (a node before its children).</summary>
    private static IEnumerable<LenientJson.Node> Walk(LenientJson.Node node)
    {
        var stack = new Stack<LenientJson.Node>([node]);
        while (stack.TryPop(out var current))
        {
            yield return current;
            var children = current switch
            {
                LenientJson.ArrayNode a => a.Items,
                LenientJson.ObjectNode o => o.Members.Select(m => m.Value).ToList(),
                _ => [],
            };
            for (var i = children.Count - 1; i >= 0; i--) stack.Push(children[i]);
        }
    }

    /// <summary>The array's numbers when it was closed and holds exactly <paramref name="count"/> numbers.</summary>
    private static float[]? Numbers(LenientJson.ArrayNode array, int count)
    {
        if (!array.Closed || array.Items.Count != count) return null;
        var values = new float[count];
        for (var i = 0; i < count; i++)
        {
            if (array.Items[i] is not LenientJson.NumberNode n || !float.IsFinite((float)n.Value)) return null;
            values[i] = (float)n.Value;
        }
        return values;
    }

    private static string? Label(LenientJson.ObjectNode o) =>
        o.Members.Where(m => m.Key.Equals("label", StringComparison.OrdinalIgnoreCase)).Select(m => m.Value)
            .OfType<LenientJson.StringNode>().FirstOrDefault(s => s.Closed)?.Value;

    private static SpatialItem Ordered(SpatialItem box)
    {
        var c = box.Coordinates;
        return box with { Coordinates = [Math.Min(c[0], c[2]), Math.Min(c[1], c[3]), Math.Max(c[0], c[2]), Math.Max(c[1], c[3])] };
    }

    private static float[] Clamp(float[] xy, int width, int height)
    {
        for (var i = 0; i < xy.Length; i++) xy[i] = Math.Clamp(xy[i], 0, i % 2 == 0 ? width : height);
        return xy;
    }

    // Adding 0.0 turns a rounded −0 into 0.
    private static string Whole(float v) => (Math.Round((double)v, MidpointRounding.AwayFromZero) + 0.0).ToString("F0", CultureInfo.InvariantCulture);
}
