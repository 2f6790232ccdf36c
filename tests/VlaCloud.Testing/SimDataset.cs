using System.Formats.Tar;
using VlaCloud.Contracts;
using VlaCloud.Sim;

namespace VlaCloud.Testing;

/// <summary>Training data for fine-tuning tests: a small simulator dataset as the tar a user uploads, and a broken one.</summary>
public static class SimDataset
{
    /// <summary>Episodes in <see cref="Tar"/>.</summary>
    public const int Episodes = 4;

    /// <summary>A tiny run: 6 steps of 4 samples, a training state saved at step 3.</summary>
    public static FineTuningHyperparameters TinyRun { get; } = new()
    {
        Steps = 6, BatchSize = 4, LearningRate = 1e-3, WarmupSteps = 1, CheckpointInterval = 3, Seed = 5,
    };

    /// <summary>A LeRobot dataset of <see cref="Episodes"/> scripted-expert episodes (64×64), generated once per test run.</summary>
    public static Task<byte[]> Tar => tar.Value;

    private static readonly Lazy<Task<byte[]>> tar = new(async () =>
    {
        var folder = Directory.CreateTempSubdirectory("vlacloud-cli-ds-").FullName;
        try
        {
            await DatasetGenerator.GenerateAsync(folder, new DatasetOptions(Episodes, SimSplits.Train, [TaskKind.PickPlace, TaskKind.Push], 64));
            using var archive = new MemoryStream();
            await TarFile.CreateFromDirectoryAsync(folder, archive, includeBaseDirectory: false);
            return archive.ToArray();
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    });

    /// <summary>Bytes that are not an archive at all, which validation must reject.</summary>
    public static byte[] Broken { get; } = [.. Enumerable.Range(0, 5000).Select(i => (byte)(i * 31 % 251))];
}
