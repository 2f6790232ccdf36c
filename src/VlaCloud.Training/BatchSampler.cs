using VlaCloud.Actions;
using VlaCloud.Policy;

namespace VlaCloud.Training;

/// <summary>
/// Draws the batch of one step. A step's batch depends only on the data, the options and the step
/// number, so a resumed run sees exactly the batches the uninterrupted run would have seen.
/// </summary>
public sealed class BatchSampler
{
    private readonly TrainingData data;
    private readonly CoTrainingOptions options;
    private readonly int chunkLength;
    private readonly int[] frameStarts;

    /// <summary>A sampler over <paramref name="data"/> for chunks of <paramref name="chunkLength"/> actions.</summary>
    public BatchSampler(TrainingData data, CoTrainingOptions options, int chunkLength)
    {
        if (options.SpatialKinds.Contains(SpatialKind.Placement) && data.Spatial.Count(r => r.Placement is null) is var missing and > 0)
            throw new ArgumentException($"placement questions need a destination in every spatial record; {missing} of {data.Spatial.Count} have none "
                + $"(from {string.Join(", ", data.Spatial.Where(r => r.Placement is null).Select(r => r.Source).Distinct().Take(3))})");
        this.data = data;
        this.options = options;
        this.chunkLength = chunkLength;
        frameStarts = new int[data.Episodes.Count];
        for (var i = 1; i < frameStarts.Length; i++) frameStarts[i] = frameStarts[i - 1] + data.Episodes[i - 1].Length;
    }

    /// <summary>
    /// The batch of step <paramref name="step"/>: <see cref="CoTrainingOptions.ActionSamplesAt"/> action samples
    /// (frames uniform over all demonstration frames) and <see cref="CoTrainingOptions.SpatialSamplesAt"/>
    /// spatial questions (records uniform, kinds uniform over <see cref="CoTrainingOptions.SpatialKinds"/>).
    /// </summary>
    public TrainingBatch Sample(int step)
    {
        var rng = new Random(StepSeed(options.Seed, step, 0x5eed));
        var actions = new ActionSample[options.ActionSamplesAt(step)];
        for (var i = 0; i < actions.Length; i++) actions[i] = ActionAt(rng.Next(data.Frames));
        var spatialCount = data.Spatial.Count == 0 ? 0 : options.SpatialSamplesAt(step);
        var spatial = new SpatialSample[spatialCount];
        for (var i = 0; i < spatial.Length; i++)
        {
            var record = data.Spatial[rng.Next(data.Spatial.Count)];
            spatial[i] = Question(record, options.SpatialKinds[rng.Next(options.SpatialKinds.Count)]);
        }
        return new TrainingBatch(actions, spatial);
    }

    /// <summary>The action sample at a global frame index: the observation and the next H actions, masked past the episode's end.</summary>
    public ActionSample ActionAt(int globalFrame)
    {
        var e = Array.BinarySearch(frameStarts, globalFrame);
        if (e < 0) e = ~e - 1;
        var episode = data.Episodes[e];
        var t = globalFrame - frameStarts[e];
        var dim = episode.Actions[0].Length;
        var valid = new bool[chunkLength];
        for (var k = 0; k < chunkLength && t + k < episode.Length; k++) valid[k] = true;
        // Steps past the episode's end stay zero; Valid masks them out of the loss.
        var chunk = ActionChunk.Create(chunkLength, dim, (Actions: episode.Actions, Start: t, End: Math.Min(episode.Length, t + chunkLength)), static (values, e) =>
        {
            var dim = e.Actions[0].Length;
            for (var k = 0; e.Start + k < e.End; k++) e.Actions[e.Start + k].CopyTo(values.Slice(k * dim, dim));
        });
        return new ActionSample(episode.Observations[t], chunk, valid, episode.Guides?[t]);
    }

    /// <summary>A point, box, trajectory or placement question about a record.</summary>
    public static SpatialSample Question(SpatialRecord record, SpatialKind kind) => new(
        record.Images, SpatialPrompts.Question(kind, record.Instruction), kind,
        kind switch
        {
            SpatialKind.Point => record.Point,
            SpatialKind.Box => record.Box,
            SpatialKind.Placement => record.Placement ?? throw new ArgumentException($"a record from {record.Source} has no destination to ask a placement question about"),
            _ => record.Trajectory,
        });

    /// <summary>A well-mixed 31-bit seed from a run seed, a step and a stream id (SplitMix64; stable across processes, unlike HashCode).</summary>
    internal static int StepSeed(long seed, long step, long stream)
    {
        var z = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)step * 0xBF58476D1CE4E5B9UL + (ulong)stream * 0x94D049BB133111EBUL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }
}
