namespace VlaCloud.Sim;

/// <summary>What to generate.</summary>
/// <param name="Episodes">Successful episodes to write.</param>
/// <param name="Split">Split the scenes come from (<c>train</c> for demonstrations, <c>grounding</c> for spatial data).</param>
/// <param name="Tasks">Task kinds, alternated by episode.</param>
/// <param name="ImageSize">Camera image side in pixels.</param>
/// <param name="FramesPerEpisode">
/// Keep only each episode's first frames (all when null). Grounding data wants many scenes more than many frames of
/// one scene: an expert episode's ~18 frames share one layout, and a tiny VLM trained on 3,000 such episodes
/// memorised their layouts instead of learning to find a named object. The labels still come from the whole rollout.
/// </param>
/// <param name="Noise">Noise in the actions the expert executes (its clean actions are recorded); none when null.</param>
public sealed record DatasetOptions(int Episodes, SimSplit Split, IReadOnlyList<TaskKind> Tasks, int ImageSize = 64, int? FramesPerEpisode = null, ExpertNoise? Noise = null);

/// <summary>What was generated.</summary>
/// <param name="Episodes">Episodes written.</param>
/// <param name="Frames">Frames written.</param>
/// <param name="Tasks">Distinct instructions.</param>
/// <param name="Attempted">Expert episodes run (failures are not written).</param>
public sealed record DatasetSummary(int Episodes, int Frames, int Tasks, int Attempted);

/// <summary>Generates LeRobot v2.1 demonstration datasets by recording the scripted expert.</summary>
public static class DatasetGenerator
{
    /// <summary>
    /// Records expert episodes of <paramref name="options"/>'s split (episode i from the split's seed
    /// <c>SeedBase + i</c>, skipping the rare failure) and writes them to <paramref name="root"/>.
    /// Rendering runs in parallel; writing is sequential, so the dataset is the same on any machine.
    /// </summary>
    public static async Task<DatasetSummary> GenerateAsync(
        string root,
        DatasetOptions options,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Episodes, 1);
        if (options.FramesPerEpisode is { } kept) ArgumentOutOfRangeException.ThrowIfLessThan(kept, 1, nameof(options.FramesPerEpisode));
        var embodiment = SimEmbodiment.Create(options.ImageSize);
        var writer = new SimDatasetWriter(root, embodiment);
        var batch = Math.Max(1, Environment.ProcessorCount);
        var next = 0;
        using var recorder = new ParallelExpertRecorder(embodiment);
        while (writer.Episodes < options.Episodes)
        {
            var scenes = Enumerable.Range(next, batch).Select(i => SceneGenerator.ForEpisode(options.Split, i, SceneGenerator.KindOf(i, options.Tasks))).ToArray();
            next += batch;
            var recorded = recorder.Record(scenes, episode => options.FramesPerEpisode is { } frames ? episode.FirstFrames(frames) : episode,
                options.Noise, cancellationToken);
            foreach (var episode in recorded.Where(e => e.Success))
            {
                if (writer.Episodes == options.Episodes) break;
                await writer.AddEpisodeAsync(episode, cancellationToken);
                progress?.Report(writer.Episodes);
            }
        }
        await writer.CompleteAsync(cancellationToken);
        return new DatasetSummary(writer.Episodes, writer.Frames, writer.Tasks, next);
    }
}
