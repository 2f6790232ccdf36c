using VlaCloud.Actions;

namespace VlaCloud.Policy;

/// <summary>One camera image: RGB, 8 bits per channel, rows top to bottom, pixels as R,G,B (HWC).</summary>
public sealed record CameraImage(byte[] Rgb, int Width, int Height)
{
    /// <summary>Throws when the byte count does not match the size.</summary>
    public void Validate()
    {
        if (Width <= 0 || Height <= 0) throw new ArgumentException($"image size {Width}×{Height} is not positive");
        if (Rgb.Length != Width * Height * 3)
            throw new ArgumentException($"image of {Width}×{Height} needs {Width * Height * 3} RGB bytes, got {Rgb.Length}");
    }
}

/// <summary>
/// What the robot sees and is told at one control step. <see cref="State"/> is in the embodiment's
/// units and is ignored by configs without state; <see cref="Embodiment"/> names the normalisation
/// statistics to use (null: the policy's only embodiment).
/// </summary>
public sealed record Observation(IReadOnlyList<CameraImage> Images, string Instruction, float[]? State = null, string? Embodiment = null);

/// <summary>
/// A demonstration sample for the action loss: the observation and the next <c>H</c> actions
/// (<c>[H, action_dim]</c>, embodiment units). <see cref="Valid"/> marks real steps (false past an
/// episode's end); null means all valid. <see cref="Guide"/> is the frame's labelled target and destination,
/// read by configs with <see cref="PolicyConfig.PointGuidance"/> in place of System 2's answers (teacher forcing);
/// null means neither is known.
/// </summary>
public sealed record ActionSample(Observation Observation, ActionChunk Actions, bool[]? Valid = null, PointGuide? Guide = null);

/// <summary>
/// Where a task's object is (<see cref="Target"/>) and where it goes (<see cref="Destination"/>), each <c>[x, y]</c> in
/// pixels of the observation's first image, or null when unknown: the input of System 1's point token
/// (<see cref="PolicyConfig.PointGuidance"/>). In training it comes from the spatial labels; in inference from
/// System 2's answers to the point and placement questions.
/// </summary>
public sealed record PointGuide(float[]? Target, float[]? Destination)
{
    /// <summary>Throws when a point that is given is not an <c>[x, y]</c> pair of finite numbers.</summary>
    public void Validate()
    {
        foreach (var (name, point) in new[] { ("target", Target), ("destination", Destination) })
            if (point is not null && (point.Length != 2 || !float.IsFinite(point[0]) || !float.IsFinite(point[1])))
                throw new ArgumentException($"the guide's {name} must be [x, y] of finite numbers");
    }
}

/// <summary>Kinds of spatial answer: a point (x,y), a box (x1,y1,x2,y2), a trajectory (list of points) or a placement point (x,y).</summary>
public enum SpatialKind
{
    /// <summary>One point.</summary>
    Point,
    /// <summary>One bounding box.</summary>
    Box,
    /// <summary>A list of points.</summary>
    Trajectory,
    /// <summary>
    /// One point: where the task puts the object (the centre of its destination). A policy needs both where
    /// the object is and where it goes (README, experiment, sixth round).
    /// </summary>
    Placement,
}

/// <summary>
/// A spatial grounding sample: images, a question (see <see cref="SpatialPrompts.Question"/>) and the
/// answer's coordinates in pixels of the first image as x,y pairs (2 for a point, 4 for a box, 2·n for
/// a trajectory).
/// </summary>
public sealed record SpatialSample(IReadOnlyList<CameraImage> Images, string Question, SpatialKind Kind, float[] Coordinates);

/// <summary>A training batch mixing action and spatial samples (either list may be empty).</summary>
public sealed record TrainingBatch(IReadOnlyList<ActionSample> Actions, IReadOnlyList<SpatialSample> Spatial);

/// <summary>A decoded spatial answer: coordinates in pixels of the first image as x,y pairs.</summary>
/// <param name="Kind">The question's kind.</param>
/// <param name="Coordinates">x,y pairs in pixels of the first image; empty when the model's text held no answer of the kind.</param>
/// <param name="Tokens">The generated token ids.</param>
/// <param name="Text">
/// The answer as the model wrote it, for a family that answers in text (<c>internvla-m1</c>: Qwen's JSON); null for
/// <c>st4vla</c>, whose answers are coordinate tokens and always parse.
/// </param>
public sealed record SpatialPrediction(SpatialKind Kind, float[] Coordinates, int[] Tokens, string? Text = null)
{
    /// <summary>Whether the model gave coordinates (false when its text held no answer of the kind).</summary>
    public bool Answered => Coordinates.Length > 0;

    /// <summary>The coordinates as (x, y) points.</summary>
    public IEnumerable<(float X, float Y)> Points() =>
        Enumerable.Range(0, Coordinates.Length / 2).Select(i => (Coordinates[2 * i], Coordinates[2 * i + 1]));
}

/// <summary>The texts that ask for spatial answers, shared by training data and inference.</summary>
public static class SpatialPrompts
{
    /// <summary>
    /// The wire name of a spatial kind (<c>point</c>, <c>box</c>, …): how the API, the CLI and job metrics spell it,
    /// so a new kind needs no list of names kept by hand.
    /// </summary>
    public static string WireName(SpatialKind kind) => kind.ToString().ToLowerInvariant();

    /// <summary>The wire names of every spatial kind, in declaration order.</summary>
    public static IReadOnlyList<string> WireNames { get; } = [.. Enum.GetValues<SpatialKind>().Select(WireName)];

    /// <summary>The spatial prompt appended to instructions in action training (the paper's CoT prompt).</summary>
    public static string ForAction(string instruction) =>
        $"Your task is {instruction.Trim().TrimEnd('.')}. To identify the key objects for your task. Locate their bounding boxes in [x1,y1,x2,y2] format.";

    /// <summary>The question of a spatial sample of the given kind about an instruction.</summary>
    public static string Question(SpatialKind kind, string instruction)
    {
        var task = instruction.Trim().TrimEnd('.');
        return kind switch
        {
            SpatialKind.Point => $"Your task is {task}. Locate the key point in [x,y] format.",
            SpatialKind.Box => $"Your task is {task}. Locate the key object bounding box in [x1,y1,x2,y2] format.",
            SpatialKind.Placement => $"Your task is {task}. Locate the place point in [x,y] format.",
            _ => $"Your task is {task}. Predict the gripper trajectory as a list of [x,y] points.",
        };
    }
}
