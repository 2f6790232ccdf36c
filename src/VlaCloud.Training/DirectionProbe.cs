using VlaCloud.Actions;
using VlaCloud.Policy;
using VlaCloud.Sim;

namespace VlaCloud.Training;

/// <summary>
/// How a policy's open-loop chunks compare with the expert's on one set of frames. The moves (dx, dy) are scored in
/// the simulator's units over every step of each chunk that lies inside its episode (the training loss's mask).
/// </summary>
/// <param name="Frames">Frames scored (one chunk each).</param>
/// <param name="Steps">Chunk steps scored (each has a dx, a dy and a gripper value).</param>
/// <param name="MseX">Mean squared error of dx.</param>
/// <param name="MseY">Mean squared error of dy.</param>
/// <param name="ZeroMseX">Mean squared dx of the expert: the error of predicting no move.</param>
/// <param name="ZeroMseY">Mean squared dy of the expert.</param>
/// <param name="SignedX">dx components whose expert value is above the threshold in size (the ones whose sign is scored).</param>
/// <param name="SignRightX">Share of <paramref name="SignedX"/> whose predicted sign is the expert's (0 when there are none).</param>
/// <param name="SignedY">dy components scored for sign.</param>
/// <param name="SignRightY">Share of <paramref name="SignedY"/> with the expert's sign.</param>
/// <param name="SignedFirst">Components of the first step of each chunk scored for sign (dx and dy together).</param>
/// <param name="SignRightFirst">Share of them with the expert's sign: the step a closed loop that asks every step executes most.</param>
/// <param name="GripperRight">Share of steps whose gripper command (thresholded at 0.5) is the expert's.</param>
/// <param name="MajoritySign">
/// The blind baseline of <see cref="SignRight"/>: the share of sign-scored components that have their axis's more common
/// sign in these frames, what a policy that always moved the same diagonal way (the better of the four) would score.
/// </param>
/// <param name="MajorityGripper">The blind baseline of <paramref name="GripperRight"/>: the share of steps with the more common gripper command.</param>
/// <param name="SignRightStdError">
/// Standard error of <see cref="SignRight"/> over episodes (scenes), or null when the frames' episodes were not given
/// or fewer than two episodes have sign-scored components. A chunk's steps and an episode's frames are strongly
/// correlated, so the error over components would be far too small; this one treats each episode as one draw (the
/// cluster-robust error of a ratio: <c>sqrt(E / (E − 1) · Σ (right_e − p · scored_e)²) / Σ scored_e</c>).
/// </param>
public sealed record DirectionScore(
    int Frames, int Steps, double MseX, double MseY, double ZeroMseX, double ZeroMseY,
    int SignedX, double SignRightX, int SignedY, double SignRightY, int SignedFirst, double SignRightFirst, double GripperRight, double MajoritySign, double MajorityGripper,
    double? SignRightStdError = null)
{
    /// <summary>Share of all sign-scored dx and dy components with the expert's sign (0 when there are none).</summary>
    public double SignRight => SignedX + SignedY == 0 ? 0 : (SignRightX * SignedX + SignRightY * SignedY) / (SignedX + SignedY);

    /// <summary>Mean squared error of dx and dy together.</summary>
    public double Mse => (MseX + MseY) / 2;

    /// <summary>The predict-no-move baseline of <see cref="Mse"/>.</summary>
    public double ZeroMse => (ZeroMseX + ZeroMseY) / 2;
}

/// <summary>
/// How close System 2's answers to one spatial question (the target's point, or the destination's) are to the labels on
/// a set of frames, in pixels of the first camera, with the blind baseline of always answering the frames' mean label.
/// </summary>
/// <param name="Questions">Frames asked (those with a label for this question).</param>
/// <param name="Answered">Answers that held a point (an <c>[x, y]</c> pair of finite numbers).</param>
/// <param name="MeanErrorPx">Mean distance in pixels from answer to label over the answered questions; null when none was.</param>
/// <param name="Within4">Share of all questions answered within 4 px of the label (an unanswered question counts as a miss).</param>
/// <param name="Within8">Share of all questions answered within 8 px.</param>
/// <param name="BlindErrorPx">Mean distance from the labels' mean point (one constant guess for every frame) to each label; null with no questions.</param>
/// <param name="BlindWithin4">Share of the labels within 4 px of that constant guess.</param>
/// <param name="BlindWithin8">Share within 8 px of it.</param>
public sealed record PointAnswerScore(int Questions, int Answered, double? MeanErrorPx, double Within4, double Within8, double? BlindErrorPx, double BlindWithin4, double BlindWithin8)
{
    /// <summary>Share of the questions whose answer held no point (0 when there were none).</summary>
    public double Unanswered => Questions == 0 ? 0 : (double)(Questions - Answered) / Questions;
}

/// <summary>System 2's spatial answers on a set of probed frames: the point question (<see cref="Target"/>) and the placement question (<see cref="Destination"/>).</summary>
/// <param name="Frames">Labelled frames asked.</param>
/// <param name="Target">The target's point against the labelled target centre.</param>
/// <param name="Destination">The placement point against the labelled destination centre.</param>
public sealed record SpatialAnswerScore(int Frames, PointAnswerScore Target, PointAnswerScore Destination);

/// <summary>
/// The open-loop direction probe: does a policy's chunk at a frame move the way the expert's does? It asks the policy
/// for a chunk at each frame of a set of demonstrations exactly as closed-loop evaluation does
/// (<see cref="PolicyController.Sample"/>, the observation from <see cref="PolicyController.ToObservation"/>) and
/// scores it against the expert's chunk at that frame as training sees it (<see cref="BatchSampler.ActionAt"/>).
/// Closed-loop success stays at 0 long before a policy is useless; the sign of its moves on new scenes says whether
/// its chunks point toward the target at all, at a fraction of an evaluation's cost.
/// </summary>
public static class DirectionProbe
{
    /// <summary>Default size below which an expert's dx or dy is not scored for sign: a tenth of the largest move.</summary>
    public const double DefaultSignThreshold = Physics.MaxStep / 10;

    /// <summary>
    /// Expert demonstrations of <paramref name="episodes"/> scenes of <paramref name="split"/>, episode i from the
    /// split's seed <c>seedBase + i</c> and task kind as in <see cref="Evaluator"/>, each run to the end by the scripted
    /// expert with every frame turned into the model's observation by <paramref name="controller"/>, and labelled with the
    /// simulator's target and destination centres (<see cref="DemonstrationEpisode.Guides"/>, for <see cref="RunSpatial"/>). An episode's
    /// <see cref="DemonstrationEpisode.Index"/> is its scene's seed, the episode id closed loop samples its noise with.
    /// The rare episode the expert fails is kept: its actions are still the expert's.
    /// </summary>
    public static TrainingData Demonstrations(PolicyController controller, SimSplit split, int episodes, int seedBase,
        IReadOnlyList<TaskKind> tasks, SimEmbodiment embodiment, NormalizationStats normalization, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(episodes, 1);
        SimSplits.ThrowIfSeedRangeOutside(seedBase, episodes, nameof(seedBase));
        if (tasks.Count == 0) throw new ArgumentException("at least one task kind", nameof(tasks));
        var scenes = Enumerable.Range(0, episodes).Select(i => SceneGenerator.ForEpisode(split, i, SceneGenerator.KindOf(i, tasks), seedBase)).ToArray();
        using var recorder = new ParallelExpertRecorder(embodiment);
        // Each episode becomes the model's observations on its recording thread, so its rendered frames go at once.
        var recorded = recorder.Record(scenes, episode => new DemonstrationEpisode(episode.Scene.Seed,
            [.. episode.Frames.Select((f, t) => controller.ToObservation(new SimObservation(episode.Scene.Seed, t, episode.Scene.Task.Instruction, f.State, f.Images, f.World)))],
            [.. episode.Frames.Select(f => f.Action)],
            // The simulator's labels (first camera's pixels, as the frames' first image): what --spatial scores System 2 against.
            [.. episode.Labels.Select(l => PolicyController.Guide(l.Target, l.Destination))]),
            cancellationToken: cancellationToken);
        return new TrainingData(embodiment.Name, normalization, recorded, []);
    }

    /// <summary>
    /// Global frame indices of <paramref name="data"/> to probe: all of them when there are at most
    /// <paramref name="maxFrames"/>, else that many spread evenly over the whole set (first frame included).
    /// </summary>
    public static IReadOnlyList<int> Frames(TrainingData data, int maxFrames)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxFrames, 1);
        if (data.Frames <= maxFrames) return [.. Enumerable.Range(0, data.Frames)];
        return [.. Enumerable.Range(0, maxFrames).Select(i => (int)((long)i * data.Frames / maxFrames))];
    }

    /// <summary>
    /// Probes <paramref name="frames"/> of <paramref name="data"/>: the policy's chunks in batches of
    /// <paramref name="batchSize"/> frames, each sampled with its episode's <see cref="DemonstrationEpisode.Index"/>
    /// and frame as the noise key, scored against the expert's chunks by <see cref="Score"/>. When the controller acts on
    /// oracle guides (<see cref="PolicyController.OracleGuides"/>) each frame's chunk reads that frame's label
    /// (<see cref="DemonstrationEpisode.Guides"/>) instead of System 2's points; a probed frame without one throws.
    /// </summary>
    public static DirectionScore Run(PolicyController controller, TrainingData data, IReadOnlyList<int> frames, int batchSize = 16,
        double signThreshold = DefaultSignThreshold, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var sampler = new BatchSampler(data, new CoTrainingOptions().AsVanilla(), controller.ChunkLength);
        var keys = FrameKeys(data);
        var expert = new List<ActionSample>(frames.Count);
        var predicted = new List<ActionChunk>(frames.Count);
        foreach (var batch in frames.Chunk(batchSize))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var samples = batch.Select(sampler.ActionAt).ToArray();
            PointGuide?[]? guides = null;
            if (controller.OracleGuides)
            {
                // A frame without a target label would silently fall back to System 2 for its whole batch: refuse instead.
                if (samples.Select((s, i) => (s, i)).FirstOrDefault(p => p.s.Guide?.Target is null) is { s: not null } unlabelled)
                    throw new InvalidOperationException($"oracle guides need every probed frame labelled, and frame {batch[unlabelled.i]} has no target label");
                guides = [.. samples.Select(s => s.Guide)];
            }
            predicted.AddRange(controller.Sample([.. samples.Select(s => s.Observation)], [.. batch.Select(f => keys[f])], guides));
            expert.AddRange(samples);
        }
        return Score(predicted, expert, signThreshold, [.. frames.Select(f => keys[f].EpisodeId)]);
    }

    /// <summary>
    /// Scores <paramref name="predicted"/> chunks against the expert's <paramref name="expert"/> samples (same order):
    /// every step inside the expert's episode (its <see cref="ActionSample.Valid"/> mask, all steps without one) up to
    /// the shorter of the two horizons. Action dimensions 0 and 1 are dx and dy, 2 the gripper (the simulator's layout).
    /// Signs are scored only where the expert's |value| exceeds <paramref name="signThreshold"/>; a predicted 0 is wrong.
    /// </summary>
    public static DirectionScore Score(IReadOnlyList<ActionChunk> predicted, IReadOnlyList<ActionSample> expert, double signThreshold = DefaultSignThreshold,
        IReadOnlyList<long>? episodes = null)
    {
        if (predicted.Count != expert.Count) throw new ArgumentException($"{predicted.Count} predicted chunks for {expert.Count} expert chunks");
        if (episodes is not null && episodes.Count != expert.Count) throw new ArgumentException($"{episodes.Count} episode ids for {expert.Count} expert chunks");
        // Per episode: sign-scored components and how many were right, for the error over scenes.
        var byEpisode = new Dictionary<long, (int Scored, int Right)>();
        ArgumentOutOfRangeException.ThrowIfNegative(signThreshold);
        var steps = 0;
        double sqX = 0, sqY = 0, zeroX = 0, zeroY = 0;
        int signedX = 0, rightX = 0, signedY = 0, rightY = 0, signedFirst = 0, rightFirst = 0, gripperRight = 0;
        var positive = new int[2];
        var closed = 0;
        for (var i = 0; i < expert.Count; i++)
        {
            var (p, e) = (predicted[i], expert[i].Actions);
            if (p.ActionDim < 3 || e.ActionDim < 3) throw new ArgumentException("the probe scores dx, dy and a gripper: chunks need 3 action dimensions");
            var valid = expert[i].Valid;
            for (var t = 0; t < Math.Min(p.Horizon, e.Horizon); t++)
            {
                if (valid is not null && (t >= valid.Length || !valid[t])) continue;
                steps++;
                for (var d = 0; d < 2; d++)
                {
                    double want = e[t, d], got = p[t, d];
                    var error = (got - want) * (got - want);
                    if (d == 0) { sqX += error; zeroX += want * want; } else { sqY += error; zeroY += want * want; }
                    if (Math.Abs(want) <= signThreshold) continue;
                    var right = Math.Sign(got) == Math.Sign(want);
                    if (want > 0) positive[d]++;
                    if (d == 0) { signedX++; if (right) rightX++; } else { signedY++; if (right) rightY++; }
                    if (episodes is not null)
                    {
                        var (scored, rightSoFar) = byEpisode.GetValueOrDefault(episodes[i]);
                        byEpisode[episodes[i]] = (scored + 1, rightSoFar + (right ? 1 : 0));
                    }
                    if (t == 0) { signedFirst++; if (right) rightFirst++; }
                }
                if (p[t, 2] > 0.5f == e[t, 2] > 0.5f) gripperRight++;
                if (e[t, 2] > 0.5f) closed++;
            }
        }
        var n = Math.Max(steps, 1);
        return new DirectionScore(expert.Count, steps, sqX / n, sqY / n, zeroX / n, zeroY / n,
            signedX, Share(rightX, signedX), signedY, Share(rightY, signedY), signedFirst, Share(rightFirst, signedFirst), Share(gripperRight, steps),
            Share(Math.Max(positive[0], signedX - positive[0]) + Math.Max(positive[1], signedY - positive[1]), signedX + signedY),
            Share(Math.Max(closed, steps - closed), steps), StandardError(byEpisode.Values));

        static double Share(int right, int of) => of == 0 ? 0 : (double)right / of;
    }

    /// <summary>Pixel distances within which an answer counts as close: <see cref="PointAnswerScore.Within4"/> and <see cref="PointAnswerScore.Within8"/>.</summary>
    public static IReadOnlyList<double> WithinPx { get; } = [4, 8];

    /// <summary>
    /// Asks System 2 of <paramref name="policy"/> the point and placement questions (<see cref="VlaPolicy.GeneratePointGuides"/>,
    /// one batched call per <paramref name="batchSize"/> frames) about those of <paramref name="frames"/> that carry a label
    /// (<see cref="DemonstrationEpisode.Guides"/>), and scores the answers by <see cref="ScoreSpatial"/>. Throws when
    /// none of the frames is labelled: there is nothing to score against.
    /// </summary>
    public static SpatialAnswerScore RunSpatial(VlaPolicy policy, TrainingData data, IReadOnlyList<int> frames, int batchSize = 16, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var (observations, labels) = (new List<Observation>(), new List<PointGuide>());
        foreach (var episode in data.Episodes)
            for (var t = 0; t < episode.Length; t++)
            {
                observations.Add(episode.Observations[t]);
                labels.Add(episode.Guides?[t] ?? new PointGuide(null, null));
            }
        var asked = frames.Where(f => labels[f].Target is not null || labels[f].Destination is not null).ToArray();
        if (asked.Length == 0) throw new InvalidOperationException("none of the probed frames has spatial labels to score System 2's answers against");
        var answers = new List<PointGuide?>(asked.Length);
        foreach (var batch in asked.Chunk(batchSize))
        {
            cancellationToken.ThrowIfCancellationRequested();
            answers.AddRange(policy.GeneratePointGuides([.. batch.Select(f => observations[f])]));
        }
        return ScoreSpatial(answers, [.. asked.Select(f => labels[f])]);
    }

    /// <summary>
    /// Scores <paramref name="answers"/> (null: no answer) against <paramref name="labels"/> (same order), the target and
    /// the destination separately: a frame counts for a question only where its label has that point, and an answer
    /// without an <c>[x, y]</c> pair of finite numbers counts as unanswered (a miss in the within-k shares, out of the mean
    /// error). The blind baseline guesses the mean of the labels scored for that question on every frame.
    /// </summary>
    public static SpatialAnswerScore ScoreSpatial(IReadOnlyList<PointGuide?> answers, IReadOnlyList<PointGuide?> labels)
    {
        if (answers.Count != labels.Count) throw new ArgumentException($"{answers.Count} answers for {labels.Count} labels");
        return new SpatialAnswerScore(labels.Count(l => l?.Target is not null || l?.Destination is not null),
            ScorePoints([.. answers.Select(a => a?.Target)], [.. labels.Select(l => l?.Target)]),
            ScorePoints([.. answers.Select(a => a?.Destination)], [.. labels.Select(l => l?.Destination)]));
    }

    /// <summary>One question's answers against its labels (<see cref="ScoreSpatial"/>).</summary>
    internal static PointAnswerScore ScorePoints(IReadOnlyList<float[]?> answers, IReadOnlyList<float[]?> labels)
    {
        var pairs = answers.Zip(labels).Where(p => p.Second is not null).Select(p => (Answer: IsPoint(p.First) ? p.First : null, Label: p.Second!)).ToArray();
        if (pairs.Length == 0) return new PointAnswerScore(0, 0, null, 0, 0, null, 0, 0);
        var answered = pairs.Where(p => p.Answer is not null).Select(p => Distance(p.Answer!, p.Label[0], p.Label[1])).ToArray();
        double meanX = pairs.Average(p => (double)p.Label[0]), meanY = pairs.Average(p => (double)p.Label[1]);
        var blind = pairs.Select(p => Distance(p.Label, meanX, meanY)).ToArray();
        return new PointAnswerScore(pairs.Length, answered.Length, answered.Length == 0 ? null : answered.Average(),
            Within(answered, WithinPx[0]), Within(answered, WithinPx[1]), blind.Average(), Within(blind, WithinPx[0]), Within(blind, WithinPx[1]));

        double Within(double[] distances, double px) => (double)distances.Count(d => d <= px) / pairs.Length;
        static bool IsPoint(float[]? p) => p is { Length: 2 } && float.IsFinite(p[0]) && float.IsFinite(p[1]);
        static double Distance(float[] p, double x, double y) => Math.Sqrt((p[0] - x) * (p[0] - x) + (p[1] - y) * (p[1] - y));
    }

    /// <summary>The cluster-robust standard error of a pooled share over episodes (null with fewer than two that count).</summary>
    private static double? StandardError(IEnumerable<(int Scored, int Right)> episodes)
    {
        var counted = episodes.Where(e => e.Scored > 0).ToArray();
        if (counted.Length < 2) return null;
        double scored = counted.Sum(e => e.Scored), share = counted.Sum(e => e.Right) / scored;
        var spread = counted.Sum(e => (e.Right - share * e.Scored) * (e.Right - share * e.Scored));
        return Math.Sqrt(counted.Length / (counted.Length - 1.0) * spread) / scored;
    }

    /// <summary>The (episode id, step) noise key of every global frame.</summary>
    private static (long EpisodeId, int Step)[] FrameKeys(TrainingData data) =>
        [.. data.Episodes.SelectMany(e => Enumerable.Range(0, e.Length).Select(t => ((long)e.Index, t)))];
}
