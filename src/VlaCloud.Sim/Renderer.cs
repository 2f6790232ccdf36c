using SkiaSharp;

namespace VlaCloud.Sim;

/// <summary>
/// Draws the tabletop with SkiaSharp into RGB uint8 HWC arrays: the fixed top-down <c>main</c> camera
/// sees the whole table; the <c>wrist</c> camera looks down from the end-effector at a
/// <see cref="WristFieldOfView"/>-wide patch, so it moves with the gripper. No antialiasing: every pixel
/// has an exact palette colour, which keeps small images crisp and lets tests find objects by colour.
/// One renderer owns one drawing surface; use one per thread.
/// </summary>
public sealed class Renderer : IDisposable
{
    /// <summary>Width of the table patch the wrist camera sees, in table units.</summary>
    public const double WristFieldOfView = 0.4;

    private readonly SKBitmap _bitmap;
    private readonly SKCanvas _canvas;
    private readonly SKPaint _fill = new() { IsAntialias = false, Style = SKPaintStyle.Fill };
    private readonly SKPaint _stroke = new() { IsAntialias = false, Style = SKPaintStyle.Stroke };

    /// <summary>A renderer for square images of <paramref name="size"/> pixels.</summary>
    public Renderer(int size)
    {
        if (size < 16) throw new ArgumentOutOfRangeException(nameof(size), "images are at least 16×16");
        Size = size;
        _bitmap = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Premul));
        _canvas = new SKCanvas(_bitmap);
    }

    /// <summary>Image side in pixels.</summary>
    public int Size { get; }

    /// <summary>Renders every camera of <paramref name="embodiment"/> (by name: <c>main</c>, <c>wrist</c>).</summary>
    public Dictionary<string, byte[]> RenderAll(WorldState state, SimEmbodiment embodiment) =>
        embodiment.Cameras.ToDictionary(c => c.Name, c => c.Name switch
        {
            "main" => RenderMain(state),
            "wrist" => RenderWrist(state),
            _ => throw new ArgumentException($"the simulator has no camera '{c.Name}'"),
        });

    /// <summary>The fixed top-down view of the whole table.</summary>
    public byte[] RenderMain(WorldState state) => Render(state, SKMatrix.CreateScale(Size, Size), exclude: -1);

    /// <summary>The view from the gripper, centred on it.</summary>
    public byte[] RenderWrist(WorldState state)
    {
        var scale = (float)(Size / WristFieldOfView);
        var e = state.Effector;
        var m = SKMatrix.CreateScale(scale, scale).PostConcat(
            SKMatrix.CreateTranslation((float)(Size / 2.0 - e.X * scale), (float)(Size / 2.0 - e.Y * scale)));
        return Render(state, m, exclude: -1);
    }

    /// <summary>The main view without object <paramref name="exclude"/>: tests compare it with the full view to find the object's pixels.</summary>
    internal byte[] RenderMainWithout(WorldState state, int exclude) => Render(state, SKMatrix.CreateScale(Size, Size), exclude);

    private byte[] Render(WorldState state, SKMatrix view, int exclude)
    {
        _canvas.ResetMatrix();
        _canvas.Clear(new SKColor(20, 20, 20));
        _canvas.SetMatrix(view);
        _fill.Color = ToSk(Catalog.Table);
        _canvas.DrawRect(0, 0, 1, 1, _fill);

        foreach (var d in state.Scene.Destinations) DrawDestination(d);
        for (var i = 0; i < state.ObjectPositions.Count; i++)
            if (i != state.HeldObject && i != exclude) DrawObject(state.Scene.Objects[i], state.ObjectPositions[i]);
        // A held object is lifted: drawn above the others, under the fingers.
        if (state.HeldObject >= 0 && state.HeldObject != exclude)
            DrawObject(state.Scene.Objects[state.HeldObject], state.ObjectPositions[state.HeldObject]);
        DrawGripper(state.Effector, state.GripperClosed);
        _canvas.Flush();
        return ToRgb();
    }

    private void DrawDestination(Destination d)
    {
        const float width = 0.025f;
        _stroke.Color = ToSk(d.Color);
        _stroke.StrokeWidth = width;
        // Outer edge of the stroke sits exactly at HalfSize, so the label box is the drawn extent.
        var inner = (float)d.HalfSize - width / 2;
        var (x, y) = ((float)d.Center.X, (float)d.Center.Y);
        if (d.Kind == DestinationKind.Bowl) _canvas.DrawCircle(x, y, inner, _stroke);
        else _canvas.DrawRect(x - inner, y - inner, 2 * inner, 2 * inner, _stroke);
    }

    private void DrawObject(ObjectKind kind, Vec2 p)
    {
        _fill.Color = ToSk(kind.Color);
        var (x, y, r) = ((float)p.X, (float)p.Y, (float)Physics.ObjectRadius);
        switch (kind.Shape)
        {
            case ObjectShape.Cube:
                var h = r * 0.8f;
                _canvas.DrawRect(x - h, y - h, 2 * h, 2 * h, _fill);
                break;
            case ObjectShape.Ball:
                _canvas.DrawCircle(x, y, r * 0.9f, _fill);
                break;
            case ObjectShape.Triangle:
                DrawPolygon([(x, y - r), (x + r * 0.95f, y + r * 0.8f), (x - r * 0.95f, y + r * 0.8f)]);
                break;
            case ObjectShape.Diamond:
                DrawPolygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)]);
                break;
        }
    }

    private void DrawPolygon(ReadOnlySpan<(float X, float Y)> points)
    {
        using var path = new SKPath();
        path.MoveTo(points[0].X, points[0].Y);
        for (var i = 1; i < points.Length; i++) path.LineTo(points[i].X, points[i].Y);
        path.Close();
        _canvas.DrawPath(path, _fill);
    }

    private void DrawGripper(Vec2 e, bool closed)
    {
        // Two fingers either side of the end-effector, spread when open, together when closed.
        _fill.Color = ToSk(Catalog.Gripper);
        var (x, y) = ((float)e.X, (float)e.Y);
        var spread = closed ? 0.035f : 0.06f;
        const float fingerHalfWidth = 0.008f, fingerHalfLength = 0.025f;
        _canvas.DrawRect(x - spread - fingerHalfWidth, y - fingerHalfLength, 2 * fingerHalfWidth, 2 * fingerHalfLength, _fill);
        _canvas.DrawRect(x + spread - fingerHalfWidth, y - fingerHalfLength, 2 * fingerHalfWidth, 2 * fingerHalfLength, _fill);
        _canvas.DrawRect(x - spread, y - fingerHalfLength - 0.02f, 2 * spread, 0.02f, _fill);
    }

    private byte[] ToRgb()
    {
        var rgba = _bitmap.GetPixelSpan();
        var rgb = new byte[Size * Size * 3];
        for (int i = 0, j = 0; j < rgb.Length; i += 4, j += 3)
        {
            rgb[j] = rgba[i];
            rgb[j + 1] = rgba[i + 1];
            rgb[j + 2] = rgba[i + 2];
        }
        return rgb;
    }

    private static SKColor ToSk(SimColor c) => new(c.R, c.G, c.B);

    /// <inheritdoc />
    public void Dispose()
    {
        _fill.Dispose();
        _stroke.Dispose();
        _canvas.Dispose();
        _bitmap.Dispose();
    }
}
