using VlaCloud.Policy;
using VlaCloud.Sim;

namespace VlaCloud.Training.Tests;

/// <summary>
/// Small simulator datasets generated once for the test run (demonstrations of the train split and a
/// grounding set) and a micro model config that trains in a fraction of a second per step.
/// </summary>
public sealed class SimDataFixture : IAsyncLifetime
{
    private readonly DirectoryInfo root = Directory.CreateTempSubdirectory("vlacloud-training-tests-");

    /// <summary>Demonstrations and grounding records (st4vla data).</summary>
    public TrainingData Data { get; private set; } = null!;

    /// <summary>Folder of the demonstration dataset.</summary>
    public string TrainFolder => Path.Combine(root.FullName, "train");

    /// <summary>Folder of the grounding dataset.</summary>
    public string GroundingFolder => Path.Combine(root.FullName, "grounding");

    /// <summary>A scratch folder under the fixture's root.</summary>
    public string NewFolder(string name) => Directory.CreateDirectory(Path.Combine(root.FullName, name + "-" + Guid.NewGuid().ToString("N")[..8])).FullName;

    /// <summary>The tiny architecture shrunk further: 16×16 images, widths 32, 4 latent queries.</summary>
    public static PolicyConfig Micro { get; } = PolicyConfig.Tiny with
    {
        Name = "micro", ImageSize = 16, PatchSize = 8, VisionWidth = 32, VisionHeads = 2, LmWidth = 32, LmHeads = 2, LmMlpWidth = 64,
        LatentQueries = 4, BridgeWidth = 32, BridgeHeads = 2, ExpertWidth = 32, ExpertHeads = 2, InferenceSteps = 4,
    };

    /// <summary>Short-run options for tests.</summary>
    public static CoTrainingOptions Options(int steps) => new()
    {
        Steps = steps, BatchSize = 4, WarmupSteps = 2, SpatialRatio = 0.5, CheckpointInterval = 0, Seed = 7,
    };

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        await SimTrainingSets.EnsureAsync(TrainFolder, SimSplits.Train, 6);
        await SimTrainingSets.EnsureAsync(GroundingFolder, SimSplits.Grounding, 10);
        Data = await SimTrainingSets.LoadAsync(TrainFolder, GroundingFolder, TrainingMode.St4Vla);
    }

    /// <inheritdoc />
    public Task DisposeAsync()
    {
        root.Delete(recursive: true);
        return Task.CompletedTask;
    }
}

/// <summary>Tests sharing the generated datasets.</summary>
[CollectionDefinition(Name)]
public sealed class SimDataCollection : ICollectionFixture<SimDataFixture>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "sim data";
}
