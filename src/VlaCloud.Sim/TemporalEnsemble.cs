using VlaCloud.Actions;

namespace VlaCloud.Sim;

/// <summary>
/// The paper's execution (CogACT's adaptive ensembler): the inner controller is asked at every step, and
/// the action executed at step t is a weighted mean of what the last <c>horizon</c> chunks of the episode
/// predicted for step t, each weighted by <c>exp(α · cos(prediction, newest prediction))</c>. A sampled
/// chunk's error differs from call to call, so the mean is steadier than one chunk executed open-loop,
/// while predictions that disagree with the newest count less and the policy still reacts every step.
/// Binary dimensions such as the gripper become a weighted vote once thresholded.
/// </summary>
public sealed class TemporalEnsemble : IActionController
{
    private const int KeptEpisodes = 1024;
    private readonly IActionController inner;
    private readonly double alpha;
    private readonly int horizon;
    private readonly Dictionary<long, EpisodeHistory> episodes = [];
    private long calls;

    /// <summary>
    /// Ensembles up to <paramref name="horizon"/> chunks of <paramref name="inner"/> per step (at most the
    /// chunk length; the paper uses 7 on WidowX, 2 on Google Robot) with similarity weight <paramref name="alpha"/>
    /// (paper: 0.1; 0 is a plain mean).
    /// </summary>
    public TemporalEnsemble(IActionController inner, int horizon = 8, double alpha = 0.1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(horizon, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(alpha);
        this.inner = inner;
        this.horizon = horizon;
        this.alpha = alpha;
    }

    /// <inheritdoc />
    public bool NeedsImages => inner.NeedsImages;

    /// <summary>Returns a one-action chunk per observation, so the caller asks again at the next step.</summary>
    public IReadOnlyList<ActionChunk> Act(IReadOnlyList<SimObservation> batch)
    {
        var chunks = inner.Act(batch);
        if (chunks.Count != batch.Count) throw new InvalidOperationException($"the inner controller returned {chunks.Count} chunks for {batch.Count} observations");
        calls++;
        var result = new ActionChunk[batch.Count];
        for (var i = 0; i < batch.Count; i++)
        {
            var o = batch[i];
            if (!episodes.TryGetValue(o.EpisodeId, out var history) || o.Step < history.LastStep)
                episodes[o.EpisodeId] = history = new EpisodeHistory();
            history.LastStep = o.Step;
            history.LastCall = calls;
            history.Chunks.Add((o.Step, chunks[i]));
            history.Chunks.RemoveAll(c => o.Step - c.Start >= Math.Min(c.Actions.Horizon, horizon));
            result[i] = Mix(history.Chunks, o.Step);
        }
        if (episodes.Count > KeptEpisodes)
            foreach (var stale in episodes.OrderBy(e => e.Value.LastCall).Take(episodes.Count - KeptEpisodes).Select(e => e.Key).ToArray())
                episodes.Remove(stale);
        return result;
    }

    /// <summary>The one-action chunk executed at <paramref name="step"/>: the weighted mean of every kept chunk's action for it.</summary>
    private ActionChunk Mix(List<(int Start, ActionChunk Actions)> chunks, int step)
    {
        var newest = chunks[^1].Actions;
        var dim = newest.ActionDim;
        var sum = new double[dim];
        var total = 0.0;
        foreach (var (start, actions) in chunks)
        {
            if (actions.ActionDim != dim) throw new InvalidOperationException("action chunks of one episode differ in dimension");
            var action = actions[step - start];
            var weight = Math.Exp(alpha * CosineSimilarity(action, newest[0]));
            for (var d = 0; d < dim; d++) sum[d] += weight * action[d];
            total += weight;
        }
        return ActionChunk.Create(1, dim, (Sum: sum, Total: total), static (mixed, s) =>
        {
            for (var d = 0; d < mixed.Length; d++) mixed[d] = (float)(s.Sum[d] / s.Total);
        });
    }

    private static double CosineSimilarity(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, na = 0, nb = 0;
        for (var i = 0; i < a.Length; i++) (dot, na, nb) = (dot + a[i] * b[i], na + a[i] * a[i], nb + b[i] * b[i]);
        return na == 0 || nb == 0 ? 0 : dot / Math.Sqrt(na * nb);
    }

    private sealed class EpisodeHistory
    {
        public List<(int Start, ActionChunk Actions)> Chunks { get; } = [];
        public int LastStep { get; set; }
        public long LastCall { get; set; }
    }
}
