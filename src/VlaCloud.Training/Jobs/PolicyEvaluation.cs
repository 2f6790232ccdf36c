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
/// <param name="SeedBase">The simulator episodes' seed base (<see cref="EvaluationOptions.SeedBase"/>), or null when not evaluated there.</param>
public sealed record PolicyScore(double? SuccessRate, int Successes, int Episodes, double ActionMse, int? TargetFirst = null, double? MeanProgress = null,
    int? SeedBase = null)
{
    /// <summary>
    /// Whether this score beats <paramref name="other"/>: a higher success rate wins; on a tie (or without
    /// simulator results) a lower action error does.
    /// </summary>
    public bool Beats(PolicyScore other) => Against(other).Promoted;

    /// <summary>
    /// This score, a candidate's, against the incumbent's <paramref name="incumbent"/> (both measured the same way, on the
    /// same episodes): closed-loop success decides when both were evaluated in the simulator and differ; only a tie there,
    /// or no simulator results, leaves it to the lower action error.
    /// </summary>
    public PromotionDecision Against(PolicyScore incumbent)
    {
        if (SuccessRate is { } mine && incumbent.SuccessRate is { } theirs && Successes * incumbent.Episodes != incumbent.Successes * Episodes)
            return new PromotionDecision(PromotionDecision.BySuccess, mine > theirs, mine, theirs);
        return new PromotionDecision(PromotionDecision.ByActionMse, ActionMse < incumbent.ActionMse, ActionMse, incumbent.ActionMse);
    }

    /// <summary>The JSON shape stored in metrics.</summary>
    public object ToMetrics() => new
    {
        success_rate = SuccessRate, successes = Successes, episodes = Episodes, action_mse = ActionMse,
        target_first = TargetFirst, mean_progress = MeanProgress, split = SuccessRate is null ? null : SimSplits.Seen.Name, seed_base = SeedBase,
    };
}

/// <summary>
/// What a promotion gate decided and why: the criterion that settled it and both sides' values of it.
/// </summary>
/// <param name="DecidedBy">
/// <see cref="BySuccess"/>, <see cref="ByActionMse"/>, <see cref="NoIncumbent"/>, <see cref="IncumbentUnscorable"/> or <see cref="NotComparable"/>.
/// </param>
/// <param name="Promoted">Whether the candidate takes the alias.</param>
/// <param name="CandidateValue">The candidate's value of the deciding criterion (null when no criterion was compared).</param>
/// <param name="IncumbentValue">The incumbent's value of it.</param>
public sealed record PromotionDecision(string DecidedBy, bool Promoted, double? CandidateValue = null, double? IncumbentValue = null)
{
    /// <summary>The closed-loop success rates differed.</summary>
    public const string BySuccess = "success";

    /// <summary>Success tied (or was not measured, off the simulator): the lower action error on demonstrations won.</summary>
    public const string ByActionMse = "action_mse";

    /// <summary>The alias pointed nowhere: the candidate takes it unopposed.</summary>
    public const string NoIncumbent = "no_incumbent";

    /// <summary>The alias holder cannot act for the job's embodiment, so it counts as beaten.</summary>
    public const string IncumbentUnscorable = "incumbent_unscorable";

    /// <summary>The result was trained by an earlier attempt and cannot be scored against the holder any more: not promoted.</summary>
    public const string NotComparable = "not_comparable";

    /// <summary>
    /// The JSON shape of the job's <c>evaluation.promotion</c> and of the promotion event's data; <paramref name="candidate"/>
    /// and <paramref name="incumbent"/> add both sides' full scores.
    /// </summary>
    public object ToData(string alias, Guid? incumbentCheckpointId, int evaluationEpisodes, PolicyScore? candidate, PolicyScore? incumbent) => new
    {
        decided_by = DecidedBy, candidate_value = CandidateValue, incumbent_value = IncumbentValue, promoted = Promoted,
        alias, incumbent_checkpoint_id = incumbentCheckpointId, evaluation_episodes = evaluationEpisodes,
        result = candidate?.ToMetrics(), holder = incumbent?.ToMetrics(),
    };

    /// <inheritdoc />
    public override string ToString() => DecidedBy switch
    {
        BySuccess => $"decided by success: {CandidateValue:P1} vs {IncumbentValue:P1}",
        ByActionMse => $"decided by action MSE: {CandidateValue:G4} vs {IncumbentValue:G4}",
        NoIncumbent => "the alias was unset",
        IncumbentUnscorable => "the holder cannot act for this embodiment",
        _ => "the result cannot be compared with the holder",
    };
}

/// <summary>Scores policies the same way for a job's result and for the alias holder it may replace.</summary>
public static class PolicyEvaluation
{
    /// <summary>Environments stepped together: the policy's batch; more only costs memory (each episode's noise is its own, so results do not depend on it).</summary>
    private const int ParallelEnvs = 16;

    /// <summary>
    /// Scores <paramref name="policy"/>: <paramref name="simEpisodes"/> seen episodes in the simulator from
    /// <paramref name="seedBase"/> when <paramref name="inSimulator"/>, and the action error on a fixed sample of
    /// demonstration frames. Two policies scored with the same arguments run the same scenes with the same noise.
    /// </summary>
    public static PolicyScore Score(VlaPolicy policy, TrainingData data, bool inSimulator, int simEpisodes, int inferenceSteps, CancellationToken cancellationToken,
        int seedBase = SimSplits.DevelopmentSeedBase)
    {
        if (!inSimulator) return new PolicyScore(null, 0, 0, ActionError(policy, data, inferenceSteps));
        var result = Evaluator.EvaluateSplit(new PolicyController(policy, SimEmbodiment.Tabletop, inferenceSteps, seed: 1), SimSplits.Seen,
            new EvaluationOptions(EpisodesPerSplit: simEpisodes, ParallelEnvs: Math.Min(simEpisodes, ParallelEnvs), SeedBase: seedBase), null, cancellationToken);
        return new PolicyScore(result.Overall.Rate, result.Overall.Successes, result.Overall.Episodes, ActionError(policy, data, inferenceSteps),
            result.TargetFirst.Successes, result.MeanProgress, seedBase);
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
            for (var h = 0; h < targets[i].Count && h < chunks[i].Horizon; h++)
            {
                for (var d = 0; d < targets[i][h].Length && d < chunks[i].ActionDim; d++)
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
