namespace VlaCloud.Sim;

/// <summary>
/// The built-in environments that can run a policy closed-loop, by name. An embodiment names one of them (its
/// <c>simulator</c>) when episodes of that environment can evaluate its policies; nothing else makes an embodiment a
/// simulator one.
/// </summary>
public static class SimEnvironments
{
    /// <summary>The 2D tabletop simulator (<see cref="SimEmbodiment.Tabletop"/>): <c>sim-tabletop</c>.</summary>
    public static string Tabletop => SimEmbodiment.Tabletop.Name;

    /// <summary>Every known environment and the robot it drives.</summary>
    public static IReadOnlyDictionary<string, SimEmbodiment> All { get; } =
        new Dictionary<string, SimEmbodiment>(StringComparer.Ordinal) { [SimEmbodiment.Tabletop.Name] = SimEmbodiment.Tabletop };

    /// <summary>The robot of the environment called <paramref name="name"/>, or null when there is none (or no name).</summary>
    public static SimEmbodiment? Find(string? name) => name is not null && All.TryGetValue(name, out var robot) ? robot : null;

    /// <summary>
    /// Why a body of this layout cannot be driven by <paramref name="robot"/>'s environment (action size, state size, a
    /// camera missing or of another size), or null when it can: the environment produces exactly its robot's
    /// observations and applies its actions.
    /// </summary>
    public static string? LayoutMismatch(SimEmbodiment robot, int actionDim, int stateDim, IEnumerable<(string Name, int Width, int Height)> cameras)
    {
        var differences = new List<string>();
        if (actionDim != robot.ActionDim) differences.Add($"action_dim {actionDim} (the environment's robot has {robot.ActionDim})");
        if (stateDim != robot.StateDim) differences.Add($"state_dim {stateDim} (it has {robot.StateDim})");
        var given = cameras.ToList();
        foreach (var camera in robot.Cameras)
            if (!given.Any(c => c.Name == camera.Name && c.Width == camera.Width && c.Height == camera.Height))
                differences.Add($"camera '{camera.Name}' {camera.Width}×{camera.Height} missing");
        return differences.Count == 0 ? null : string.Join("; ", differences);
    }
}
