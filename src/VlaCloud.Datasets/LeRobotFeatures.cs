namespace VlaCloud.Datasets;

/// <summary>
/// The LeRobot feature (column) names that VlaCloud reads and writes: the one place they are spelled, so the
/// simulator's writer, the reader and training agree by construction rather than by matching literals.
/// </summary>
public static class LeRobotFeatures
{
    /// <summary>The proprioceptive state vector.</summary>
    public const string State = "observation.state";

    /// <summary>The action vector.</summary>
    public const string Action = "action";

    /// <summary>Seconds since the episode's first frame.</summary>
    public const string Timestamp = "timestamp";

    /// <summary>Index of the frame within its episode.</summary>
    public const string FrameIndex = "frame_index";

    /// <summary>Index of the episode within the dataset.</summary>
    public const string EpisodeIndex = "episode_index";

    /// <summary>Index of the frame within the dataset.</summary>
    public const string Index = "index";

    /// <summary>Index of the frame's task in <c>meta/tasks</c>.</summary>
    public const string TaskIndex = "task_index";

    /// <summary>Prefix of camera features.</summary>
    public const string ImagePrefix = "observation.images.";

    /// <summary>Columns every LeRobot frame has.</summary>
    public static readonly IReadOnlyList<string> IndexColumns = [Timestamp, FrameIndex, EpisodeIndex, Index, TaskIndex];

    /// <summary>The feature name of a camera: <c>observation.images.{camera}</c>.</summary>
    public static string Camera(string camera) => ImagePrefix + camera;
}
