namespace VlaCloud.Sim;

/// <summary>A labelled thing in an image: a point (its centre) and a box, in pixels of the main camera.</summary>
/// <param name="Name">What it is, as an instruction names it ("red cube", "black bowl").</param>
/// <param name="Point"><c>[x, y]</c>: the pixel containing its centre (x right, y down).</param>
/// <param name="Box"><c>[x1, y1, x2, y2]</c>: its drawn extent; it covers pixels <c>x1 ≤ u &lt; x2</c>, <c>y1 ≤ v &lt; y2</c>.</param>
public sealed record SpatialTarget(string Name, int[] Point, int[] Box);

/// <summary>
/// The spatial labels of one frame, the point/box/trajectory data of ST4VLA's spatial grounding.
/// </summary>
/// <param name="Target">The object the instruction is about, where it is in this frame.</param>
/// <param name="Destination">The destination the instruction names.</param>
/// <param name="Trajectory">
/// The expert's end-effector path from this frame to the end of the episode, as <c>[x, y]</c> pixels:
/// up to <see cref="SpatialLabels.TrajectoryPoints"/> points evenly spaced in time, the first at this
/// frame and the last at the episode's end.
/// </param>
public sealed record FrameLabels(SpatialTarget Target, SpatialTarget Destination, int[][] Trajectory);

/// <summary>Projects ground truth into main-camera pixels.</summary>
public static class SpatialLabels
{
    /// <summary>Most points in a trajectory label.</summary>
    public const int TrajectoryPoints = 8;

    /// <summary>The pixel containing table point <paramref name="p"/> in a square image of <paramref name="size"/> pixels.</summary>
    public static int[] Point(Vec2 p, int size) =>
        [Math.Clamp((int)Math.Floor(p.X * size), 0, size - 1), Math.Clamp((int)Math.Floor(p.Y * size), 0, size - 1)];

    /// <summary>The pixel box covering a square of half-side <paramref name="half"/> around <paramref name="c"/>.</summary>
    public static int[] Box(Vec2 c, double half, int size) =>
    [
        Math.Clamp((int)Math.Floor((c.X - half) * size), 0, size),
        Math.Clamp((int)Math.Floor((c.Y - half) * size), 0, size),
        Math.Clamp((int)Math.Ceiling((c.X + half) * size), 0, size),
        Math.Clamp((int)Math.Ceiling((c.Y + half) * size), 0, size),
    ];

    /// <summary>
    /// Labels of a frame in state <paramref name="state"/>, given the whole episode's end-effector path
    /// (<paramref name="effectorPath"/>[t] is the position at frame t, plus the final position).
    /// </summary>
    public static FrameLabels ForFrame(WorldState state, IReadOnlyList<Vec2> effectorPath, int frame, int size)
    {
        var (target, destination) = Objects(state, size);
        return new FrameLabels(target, destination, Trajectory(effectorPath, frame, size));
    }

    /// <summary>
    /// The target and destination labels of a frame in state <paramref name="state"/> (<see cref="FrameLabels.Target"/>
    /// and <see cref="FrameLabels.Destination"/>, which need no trajectory): what closed loop can label a live world with,
    /// in exactly the pixels a dataset's labels use.
    /// </summary>
    public static (SpatialTarget Target, SpatialTarget Destination) Objects(WorldState state, int size)
    {
        var scene = state.Scene;
        var target = state.ObjectPositions[scene.Task.TargetObject];
        var destination = scene.TargetDestination;
        return (new SpatialTarget(scene.TargetKind.Phrase, Point(target, size), Box(target, Physics.ObjectRadius, size)),
            new SpatialTarget(destination.Phrase, Point(destination.Center, size), Box(destination.Center, destination.HalfSize, size)));
    }

    /// <summary>Future path from <paramref name="frame"/>, subsampled evenly to at most <see cref="TrajectoryPoints"/> points.</summary>
    public static int[][] Trajectory(IReadOnlyList<Vec2> effectorPath, int frame, int size)
    {
        var last = effectorPath.Count - 1;
        var span = last - frame;
        var count = Math.Min(TrajectoryPoints, span + 1);
        if (count == 1) return [Point(effectorPath[frame], size)];
        return [.. Enumerable.Range(0, count).Select(i => Point(effectorPath[frame + (int)Math.Round(i * (double)span / (count - 1))], size))];
    }
}
