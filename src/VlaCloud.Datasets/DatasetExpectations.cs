namespace VlaCloud.Datasets;

/// <summary>
/// What an embodiment needs from a dataset: checked during validation so a dataset that cannot
/// train a policy for the robot fails early, with the reason.
/// </summary>
/// <param name="ActionDim">Width of the <c>action</c> feature.</param>
/// <param name="StateDim">Width of <c>observation.state</c>; 0 when the embodiment uses no state.</param>
/// <param name="Cameras">Camera names; each must exist as <c>observation.images.{name}</c>.</param>
/// <param name="ImageWidth">Expected image width, or null for any.</param>
/// <param name="ImageHeight">Expected image height, or null for any.</param>
public sealed record DatasetExpectations(int ActionDim, int StateDim, IReadOnlyList<string> Cameras, int? ImageWidth = null, int? ImageHeight = null)
{
    /// <summary>The feature name of a camera.</summary>
    public static string CameraFeature(string camera) => LeRobotFeatures.Camera(camera);
}
