using VlaCloud.Sim;

namespace VlaCloud.Training;

/// <summary>The simulator's training datasets on disk: generated once with the scripted expert, then reused.</summary>
public static class SimTrainingSets
{
    /// <summary>Statistics are stored under this embodiment name.</summary>
    public static string Embodiment => SimEmbodiment.Tabletop.Name;

    /// <summary>How the simulator's datasets become training data (the gripper action is binary).</summary>
    public static TrainingDataOptions DataOptions { get; } = new(Embodiment, BinaryActionDims: [2],
        Cameras: [.. SimEmbodiment.Tabletop.Cameras.Select(c => c.FeatureKey)]);

    /// <summary>
    /// Makes sure <paramref name="folder"/> holds a LeRobot dataset of <paramref name="episodes"/> expert
    /// episodes of <paramref name="split"/> (both task kinds): generates it when it has no
    /// <c>meta/info.json</c>, and otherwise leaves it as it is. Returns the folder.
    /// </summary>
    public static async Task<string> EnsureAsync(string folder, SimSplit split, int episodes, int imageSize = 64, CancellationToken cancellationToken = default)
    {
        if (File.Exists(Path.Combine(folder, "meta", "info.json"))) return folder;
        // Generate beside the target and move it into place, so an interrupted run never leaves half a dataset that looks complete.
        var temp = folder.TrimEnd(Path.DirectorySeparatorChar) + $".partial-{Environment.ProcessId}";
        if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        await DatasetGenerator.GenerateAsync(temp, new DatasetOptions(episodes, split, [TaskKind.PickPlace, TaskKind.Push], imageSize), null, cancellationToken);
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(folder))!);
        Directory.Move(temp, folder);
        return folder;
    }

    /// <summary>
    /// The experiment's data: demonstrations of the <c>train</c> split (seen objects only) and, for
    /// st4vla, spatial records from their annotations plus a <c>grounding</c> dataset that also covers
    /// the held-out objects. Vanilla gets the same demonstrations and no spatial records.
    /// </summary>
    public static async Task<TrainingData> LoadAsync(string trainFolder, string? groundingFolder, TrainingMode mode, CancellationToken cancellationToken = default)
    {
        var grounding = mode == TrainingMode.St4Vla && groundingFolder is not null ? new[] { groundingFolder } : [];
        var data = await TrainingData.LoadAsync(trainFolder, grounding, DataOptions, cancellationToken);
        return mode == TrainingMode.Vanilla ? data.WithoutSpatial() : data;
    }
}
