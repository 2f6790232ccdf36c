using System.Globalization;
using System.Text.Json;
using VlaCloud.Actions;

namespace VlaCloud.Sim;

/// <summary>How an evaluation runs.</summary>
/// <param name="EpisodesPerSplit">Episodes per split (episode i uses the split's seed <c>SeedBase + i</c>, counted from <paramref name="SeedBase"/>).</param>
/// <param name="ParallelEnvs">Environments stepped in lockstep; the controller gets up to this many observations per call.</param>
/// <param name="ExecuteSteps">Actions of each returned chunk executed before the controller is asked again.</param>
/// <param name="Tasks">Task kinds, alternated by episode index.</param>
/// <param name="Embodiment">Robot description (cameras, step limit).</param>
/// <param name="SeedBase">
/// Where in each split's seed range the episodes start: episode i of split s uses seed
/// <c>s.SeedBase + SeedBase + i</c> (<see cref="SimSplit.SeedOf(int, int)"/>). The default,
/// <see cref="SimSplits.DevelopmentSeedBase"/>, gives the scenes every earlier evaluation used; a reported result takes
/// a base no one tuned on. <c>SeedBase + EpisodesPerSplit</c> must not exceed <see cref="SimSplits.SeedStride"/>.
/// </param>
public sealed record EvaluationOptions(
    int EpisodesPerSplit = 50,
    int ParallelEnvs = 8,
    int ExecuteSteps = 8,
    IReadOnlyList<TaskKind>? Tasks = null,
    SimEmbodiment? Embodiment = null,
    int SeedBase = SimSplits.DevelopmentSeedBase)
{
    internal IReadOnlyList<TaskKind> TaskKinds => Tasks is { Count: > 0 } ? Tasks : [TaskKind.PickPlace, TaskKind.Push];

    internal SimEmbodiment Robot => Embodiment ?? SimEmbodiment.Tabletop;
}

/// <summary>Progress of an evaluation, reported after every finished episode.</summary>
public sealed record EvaluationProgress(string Split, int Done, int Total, int Successes);

/// <summary>A success rate with its 95 % Wilson score interval.</summary>
public sealed record SuccessRate(int Successes, int Episodes)
{
    /// <summary>Successes / episodes (0 when there are none).</summary>
    public double Rate => Episodes == 0 ? 0 : (double)Successes / Episodes;

    /// <summary>Lower end of the 95 % Wilson interval.</summary>
    public double Low => Wilson.Interval(Successes, Episodes).Low;

    /// <summary>Upper end of the 95 % Wilson interval.</summary>
    public double High => Wilson.Interval(Successes, Episodes).High;

    /// <inheritdoc />
    public override string ToString() => $"{Rate:P1} [{Low:P1}, {High:P1}] ({Successes}/{Episodes})";
}

/// <summary>
/// The headline of an evaluation: success on the <c>seen</c> split (new scenes of the training distribution) and on the
/// <c>unseen</c> split (held-out objects and wordings), as fractions with their 95 % Wilson intervals, and the seed range
/// they were measured on.
/// </summary>
/// <param name="SeedBase">The evaluation's seed base (<see cref="EvaluationOptions.SeedBase"/>).</param>
/// <param name="EpisodesPerSplit">Episodes per split.</param>
/// <param name="Seen">Success on <see cref="SimSplits.Seen"/>, or null when it was not evaluated.</param>
/// <param name="Unseen">Success on <see cref="SimSplits.Unseen"/>, or null when it was not evaluated.</param>
public sealed record EvaluationSummary(int SeedBase, int EpisodesPerSplit, SuccessRate? Seen, SuccessRate? Unseen)
{
    /// <summary>Success on the seen split as a fraction in [0, 1], or null.</summary>
    public double? SuccessSeen => Seen?.Rate;

    /// <summary>Success on the unseen split as a fraction in [0, 1], or null.</summary>
    public double? SuccessUnseen => Unseen?.Rate;

    /// <summary>The summary of <paramref name="results"/>, evaluated with <paramref name="options"/>.</summary>
    public static EvaluationSummary Of(IEnumerable<SplitResult> results, EvaluationOptions options)
    {
        var bySplit = results.ToDictionary(r => r.Split, r => r.Overall);
        return new EvaluationSummary(options.SeedBase, options.EpisodesPerSplit,
            bySplit.GetValueOrDefault(SimSplits.Seen.Name), bySplit.GetValueOrDefault(SimSplits.Unseen.Name));
    }

    /// <summary>
    /// <c>key: value</c> lines, the two success fractions last (<c>success_seen: 0.22</c>, <c>success_unseen: 0.2</c>;
    /// <c>n/a</c> for a split not evaluated), so a script reads them from the end of a run's output.
    /// </summary>
    public string ToText()
    {
        var lines = new List<string>
        {
            $"seed_base: {SeedBase.ToString(CultureInfo.InvariantCulture)}",
            $"episodes_per_split: {EpisodesPerSplit.ToString(CultureInfo.InvariantCulture)}",
            $"success_seen_95ci: {Interval(Seen)}",
            $"success_unseen_95ci: {Interval(Unseen)}",
            $"success_seen: {Fraction(Seen?.Rate)}",
            $"success_unseen: {Fraction(Unseen?.Rate)}",
        };
        return string.Join('\n', lines);

        static string Fraction(double? x) => x is { } v ? v.ToString("0.####", CultureInfo.InvariantCulture) : "n/a";
        static string Interval(SuccessRate? r) => r is null ? "n/a" : $"[{Fraction(r.Low)}, {Fraction(r.High)}]";
    }

    /// <summary>
    /// As JSON (snake_case): <c>seed_base</c>, <c>episodes_per_split</c>, <c>success_seen</c>, <c>success_unseen</c>, and
    /// <c>seen</c> / <c>unseen</c> with successes, episodes, rate and the interval's <c>low</c> and <c>high</c>.
    /// </summary>
    public string ToJson() => JsonSerializer.Serialize(this, SimSplits.JsonOptions);
}

/// <summary>The outcome of one split.</summary>
/// <param name="Split">Split name.</param>
/// <param name="Overall">Success over all episodes.</param>
/// <param name="ByTask">Success per task kind.</param>
/// <param name="MeanSteps">Mean episode length in steps.</param>
/// <param name="ControllerCalls">Calls to the controller (batched).</param>
/// <param name="TargetFirst">
/// Episodes in which the first object the robot moved (grasped or pushed) was the instruction's target: it went for the
/// right object, whether or not it then finished the task.
/// </param>
/// <param name="OtherFirst">Episodes in which the first object the robot moved was another one.</param>
/// <param name="MeanProgress">
/// Mean share of the target's starting distance to its destination that was closed by the episode's end, clamped
/// to [0, 1]: 0 when the target never came closer, 1 when it ended on the destination's centre.
/// </param>
public sealed record SplitResult(
    string Split,
    SuccessRate Overall,
    IReadOnlyDictionary<TaskKind, SuccessRate> ByTask,
    double MeanSteps,
    int ControllerCalls,
    SuccessRate TargetFirst,
    SuccessRate OtherFirst,
    double MeanProgress);

/// <summary>The Wilson score interval for a binomial proportion.</summary>
public static class Wilson
{
    /// <summary>The interval for <paramref name="successes"/> of <paramref name="n"/> at <paramref name="z"/> (1.96 for 95 %).</summary>
    public static (double Low, double High) Interval(int successes, int n, double z = 1.959964)
    {
        if (n <= 0) return (0, 1);
        var p = (double)successes / n;
        var z2 = z * z;
        var denominator = 1 + z2 / n;
        var center = (p + z2 / (2 * n)) / denominator;
        var half = z * Math.Sqrt(p * (1 - p) / n + z2 / (4.0 * n * n)) / denominator;
        return (Math.Max(0, center - half), Math.Min(1, center + half));
    }
}

/// <summary>
/// Closed-loop evaluation of any <see cref="IActionController"/>: runs episodes of each split in
/// <see cref="EvaluationOptions.ParallelEnvs"/> environments in lockstep, asks the controller for all
/// environments that ran out of actions in one batched call, and counts successes. Because a small policy
/// often fails every episode, it also records how far each episode got: which object the robot moved first
/// and how much closer the target came to its destination.
/// </summary>
public static class Evaluator
{
    /// <summary>Evaluates <paramref name="controller"/> on each split in turn.</summary>
    public static IReadOnlyList<SplitResult> Evaluate(
        IActionController controller,
        IEnumerable<SimSplit> splits,
        EvaluationOptions options,
        IProgress<EvaluationProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        [.. splits.Select(s => EvaluateSplit(controller, s, options, progress, cancellationToken))];

    /// <summary>Evaluates <paramref name="controller"/> on one split.</summary>
    public static SplitResult EvaluateSplit(
        IActionController controller,
        SimSplit split,
        EvaluationOptions options,
        IProgress<EvaluationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.EpisodesPerSplit, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ParallelEnvs, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ExecuteSteps, 1);
        SimSplits.ThrowIfSeedRangeOutside(options.SeedBase, options.EpisodesPerSplit, nameof(options));
        var robot = options.Robot;
        var total = options.EpisodesPerSplit;
        var slots = new Slot?[Math.Min(options.ParallelEnvs, total)];
        var renderers = new Renderer?[slots.Length];
        var outcomes = new List<(TaskKind Kind, bool Success, int Steps, int? FirstMoved, int Target, double Progress)>();
        var nextEpisode = 0;
        var calls = 0;
        try
        {
            for (var i = 0; i < slots.Length; i++) slots[i] = Start(split, nextEpisode++, options);
            while (slots.Any(s => s is not null))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var needing = Enumerable.Range(0, slots.Length).Where(i => slots[i] is { Pending.Count: 0 }).ToArray();
                if (needing.Length > 0)
                {
                    var observations = new SimObservation[needing.Length];
                    Parallel.For(0, needing.Length, j =>
                    {
                        var i = needing[j];
                        var slot = slots[i]!;
                        var state = slot.World.Snapshot();
                        IReadOnlyDictionary<string, byte[]> images = controller.NeedsImages
                            ? (renderers[i] ??= new Renderer(robot.Cameras[0].Width)).RenderAll(state, robot)
                            : new Dictionary<string, byte[]>();
                        observations[j] = new SimObservation(slot.EpisodeId, slot.World.Step, slot.World.Scene.Task.Instruction, slot.World.State(), images, state);
                    });
                    var chunks = controller.Act(observations);
                    calls++;
                    if (chunks.Count != observations.Length)
                        throw new InvalidOperationException($"the controller returned {chunks.Count} chunks for {observations.Length} observations");
                    for (var j = 0; j < needing.Length; j++)
                    {
                        var chunk = chunks[j] ?? throw new InvalidOperationException("the controller returned no action chunk");
                        for (var t = 0; t < Math.Min(chunk.Horizon, options.ExecuteSteps); t++) slots[needing[j]]!.Pending.Enqueue((chunk, t));
                    }
                }

                for (var i = 0; i < slots.Length; i++)
                {
                    var slot = slots[i];
                    if (slot is null) continue;
                    var (planned, step) = slot.Pending.Dequeue();
                    slot.World.Apply(planned[step]);
                    slot.FirstMoved ??= MovedObject(slot.World);
                    var success = slot.World.IsSuccess;
                    if (!success && slot.World.Step < robot.MaxEpisodeSteps) continue;
                    var task = slot.World.Scene.Task;
                    outcomes.Add((task.Kind, success, slot.World.Step, slot.FirstMoved, task.TargetObject, Progress(slot.World)));
                    progress?.Report(new EvaluationProgress(split.Name, outcomes.Count, total, outcomes.Count(o => o.Success)));
                    slots[i] = nextEpisode < total ? Start(split, nextEpisode++, options) : null;
                }
            }
        }
        finally
        {
            foreach (var r in renderers) r?.Dispose();
        }

        var byTask = outcomes.GroupBy(o => o.Kind).ToDictionary(g => g.Key, g => new SuccessRate(g.Count(o => o.Success), g.Count()));
        return new SplitResult(split.Name, new SuccessRate(outcomes.Count(o => o.Success), outcomes.Count), byTask,
            outcomes.Average(o => o.Steps), calls,
            new SuccessRate(outcomes.Count(o => o.FirstMoved == o.Target), outcomes.Count),
            new SuccessRate(outcomes.Count(o => o.FirstMoved is { } moved && moved != o.Target), outcomes.Count),
            outcomes.Average(o => o.Progress));
    }

    /// <summary>
    /// The object the robot has moved from its starting place, or null while none has. When one step moves several
    /// (a pushed object shoves its neighbour), the one nearest the gripper is the one it touched.
    /// </summary>
    private static int? MovedObject(TabletopWorld world)
    {
        int? moved = null;
        var nearest = double.PositiveInfinity;
        for (var i = 0; i < world.ObjectPositions.Count; i++)
        {
            if (Vec2.Distance(world.ObjectPositions[i], world.Scene.ObjectPositions[i]) < 1e-9) continue;
            var distance = Vec2.Distance(world.ObjectPositions[i], world.Effector);
            if (distance < nearest) (moved, nearest) = (i, distance);
        }
        return moved;
    }

    private static double Progress(TabletopWorld world)
    {
        var target = world.Scene.Task.TargetObject;
        var goal = world.Scene.TargetDestination.Center;
        var start = Vec2.Distance(world.Scene.ObjectPositions[target], goal);
        var end = Vec2.Distance(world.ObjectPositions[target], goal);
        return start < 1e-9 ? 1 : Math.Clamp(1 - end / start, 0, 1);
    }

    private static Slot Start(SimSplit split, int episode, EvaluationOptions options)
    {
        var scene = SceneGenerator.ForEpisode(split, episode, SceneGenerator.KindOf(episode, options.TaskKinds), options.SeedBase);
        // Episode ids (the scene's seed) are unique across splits too, so a controller keeping per-episode history never mixes two.
        return new Slot(new TabletopWorld(scene), scene.Seed);
    }

    private sealed class Slot(TabletopWorld world, long episodeId)
    {
        public TabletopWorld World { get; } = world;
        public long EpisodeId { get; } = episodeId;
        /// <summary>The actions still to execute: each a step of a chunk the controller returned (kept whole, not copied per action).</summary>
        public Queue<(ActionChunk Chunk, int Step)> Pending { get; } = new();
        public int? FirstMoved { get; set; }
    }
}
