using VlaCloud.Policy;
using VlaCloud.Sim;

namespace VlaCloud.Training.Jobs;

/// <summary>How well a policy does: closed-loop success in the simulator (sim embodiments) and its action error on demonstrations.</summary>
/// <param name="SuccessRate">Success rate on seen episodes, or null when not evaluated in the simulator.</param>
/// <param name="Successes">Successful episodes.</param>
/// <param name="Episodes">Episodes run.</param>
/// <param name="ActionMse">Mean squared error of sampled action chunks against the demonstrations' actions.</param>
/// <param name="TargetFirst">Simulator episodes in which the first object moved was the target (<see cref="SplitResult.TargetFirst"/>), or null.</param>
/// <param name="MeanProgress">Mean share of the target's way to its destination covered (<see cref="SplitResult.MeanProgress"/>), or null.</param>
public sealed record PolicyScore(double? SuccessRate, int Successes, int Episodes, double ActionMse, int? TargetFirst = null, double? MeanProgress = null)
{
    /// <summary>
    /// Whether this score beats <paramref name="other"/>: a higher success rate wins; on a tie (or without
    /// simulator results) a lower action error does.
    /// </summary>
    public bool Beats(PolicyScore other)
    {
        if (SuccessRate is { } mine && other.SuccessRate is { } theirs && mine != theirs) return mine > theirs;
        return ActionMse < other.ActionMse;
    }

    /// <summary>The JSON shape stored in metrics.</summary>
    public object ToMetrics() => new
    {
        success_rate = SuccessRate, successes = Successes, episodes = Episodes, action_mse = ActionMse,
        target_first = TargetFirst, mean_progress = MeanProgress, split = SuccessRate is null ? null : SimSplits.Seen.Name,
    };
}

/// <summary>Scores policies the same way for a job's result and for the alias holder it may replace.</summary>
public static class PolicyEvaluation
{
    /// <summary>
    /// Scores <paramref name="policy"/>: <paramref name="simEpisodes"/> seen episodes in the simulator when
    /// <paramref name="inSimulator"/>, and the action error on a fixed sample of demonstration frames.
    /// </summary>
    public static PolicyScore Score(VlaPolicy policy, TrainingData data, bool inSimulator, int simEpisodes, int inferenceSteps, CancellationToken cancellationToken)
    {
        if (!inSimulator) return new PolicyScore(null, 0, 0, ActionError(policy, data, inferenceSteps));
        var result = Evaluator.EvaluateSplit(new PolicyController(policy, SimEmbodiment.Tabletop, inferenceSteps, seed: 1), SimSplits.Seen,
            new EvaluationOptions(EpisodesPerSplit: simEpisodes, ParallelEnvs: simEpisodes), null, cancellationToken);
        return new PolicyScore(result.Overall.Rate, result.Overall.Successes, result.Overall.Episodes, ActionError(policy, data, inferenceSteps),
            result.TargetFirst.Successes, result.MeanProgress);
    }

    /// <summary>Mean squared error between sampled chunks and the recorded actions at 16 fixed frames.</summary>
    public static double ActionError(VlaPolicy policy, TrainingData data, int inferenceSteps, int samples = 16)
    {
        var rng = new Random(12345);
        var observations = new List<Observation>();
        var targets = new List<IReadOnlyList<float[]>>();
        for (var i = 0; i < samples; i++)
        {
            var episode = data.Episodes[rng.Next(data.Episodes.Count)];
            var t = rng.Next(episode.Length);
            observations.Add(episode.Observations[t] with { Embodiment = data.Embodiment });
            targets.Add([.. episode.Actions.Skip(t).Take(policy.Config.ChunkLength)]);
        }
        var chunks = policy.SampleActions(observations, [.. Enumerable.Range(0, samples).Select(i => (long)i)], inferenceSteps);
        double sum = 0;
        long count = 0;
        for (var i = 0; i < samples; i++)
        {
            for (var h = 0; h < targets[i].Count && h < chunks[i].GetLength(0); h++)
            {
                for (var d = 0; d < targets[i][h].Length && d < chunks[i].GetLength(1); d++)
                {
                    var diff = chunks[i][h, d] - targets[i][h][d];
                    sum += diff * diff;
                    count++;
                }
            }
        }
        return count == 0 ? double.NaN : sum / count;
    }
}
