using VlaCloud.Datasets;

namespace VlaCloud.Sim;

/// <summary>One camera of an embodiment: its name and image size (RGB, uint8, HWC).</summary>
/// <param name="Name">Short name; the LeRobot feature is <see cref="FeatureKey"/>.</param>
/// <param name="Height">Image height in pixels.</param>
/// <param name="Width">Image width in pixels.</param>
public sealed record CameraSpec(string Name, int Height, int Width)
{
    /// <summary>The LeRobot feature name, <c>observation.images.{Name}</c>.</summary>
    public string FeatureKey => LeRobotFeatures.Camera(Name);
}

/// <summary>
/// What a policy must know about a robot to drive it: action and state layout, cameras, control
/// rate and chunk length. Other parts (training, inference, the registry) read it; it is plain data.
/// </summary>
/// <param name="Name">Embodiment tag, e.g. <c>sim-tabletop</c>.</param>
/// <param name="ActionNames">One name per action dimension.</param>
/// <param name="ActionSemantics">How an action is applied, in words.</param>
/// <param name="StateNames">One name per proprioceptive state dimension.</param>
/// <param name="Cameras">Cameras in a fixed order; the first is the main (fixed) camera.</param>
/// <param name="ControlHz">Control rate: one action per <c>1/ControlHz</c> seconds.</param>
/// <param name="ChunkLength">Actions a policy predicts per query.</param>
/// <param name="MaxEpisodeSteps">Step limit of an episode.</param>
public sealed record SimEmbodiment(
    string Name,
    IReadOnlyList<string> ActionNames,
    string ActionSemantics,
    IReadOnlyList<string> StateNames,
    IReadOnlyList<CameraSpec> Cameras,
    double ControlHz,
    int ChunkLength,
    int MaxEpisodeSteps)
{
    /// <summary>Number of action dimensions.</summary>
    public int ActionDim => ActionNames.Count;

    /// <summary>Number of state dimensions.</summary>
    public int StateDim => StateNames.Count;

    /// <summary>The built-in simulator's robot with a 64×64 main camera and a 64×64 wrist view.</summary>
    public static SimEmbodiment Tabletop { get; } = Create(64);

    /// <summary>The simulator's robot with square cameras of <paramref name="imageSize"/> pixels.</summary>
    public static SimEmbodiment Create(int imageSize) => new(
        Name: "sim-tabletop",
        ActionNames: ["dx", "dy", "gripper"],
        ActionSemantics: "dx, dy: end-effector displacement this step in table units (the table is the unit square, "
            + $"x right, y down in the main image), each clamped to ±{Physics.MaxStep}; "
            + "gripper: 1 closes (lowers) the gripper, 0 opens (raises) it, thresholded at 0.5.",
        StateNames: ["x", "y", "gripper"],
        Cameras: [new CameraSpec("main", imageSize, imageSize), new CameraSpec("wrist", imageSize, imageSize)],
        ControlHz: 10,
        ChunkLength: 8,
        MaxEpisodeSteps: 60);
}
