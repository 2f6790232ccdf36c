using System.Text.Json;
using VlaCloud.Actions;
using VlaCloud.Sim;

namespace VlaCloud.Sim.Tests;

/// <summary>An evaluation's seed base: which scenes of a split it runs, so reported results need not be on the tuned-on scenes.</summary>
public sealed class SeedBaseTests
{
    private static readonly TaskKind[] Both = [TaskKind.PickPlace, TaskKind.Push];

    [Fact]
    public void The_development_default_keeps_every_splits_first_seeds()
    {
        Assert.Equal(0, SimSplits.DevelopmentSeedBase);
        Assert.Equal(0, new EvaluationOptions().SeedBase);
        Assert.Equal(2_000_000, SimSplits.Seen.SeedOf(0));
        Assert.Equal(5_000_123, SimSplits.Unseen.SeedOf(123));
        for (var e = 0; e < 20; e++)
        {
            var kind = SceneGenerator.KindOf(e, Both);
            Assert.Equal(Describe(SceneGenerator.Generate(SimSplits.Seen, 2_000_000 + e, kind)), Describe(SceneGenerator.ForEpisode(SimSplits.Seen, e, kind)));
            Assert.Equal(Describe(SceneGenerator.ForEpisode(SimSplits.Unseen, e, kind)), Describe(SceneGenerator.ForEpisode(SimSplits.Unseen, e, kind, SimSplits.DevelopmentSeedBase)));
        }
    }

    [Fact]
    public void Two_seed_bases_give_different_scenes_and_the_same_base_gives_identical_ones()
    {
        const int episodes = 30;
        var development = Scenes(SimSplits.Unseen, SimSplits.DevelopmentSeedBase, episodes);
        var reporting = Scenes(SimSplits.Unseen, 500_000, episodes);
        var again = Scenes(SimSplits.Unseen, 500_000, episodes);

        Assert.Equal(reporting, again);
        Assert.Empty(development.Intersect(reporting));
        Assert.Equal(Enumerable.Range(5_500_000, episodes), reporting.Select(s => JsonDocument.Parse(s).RootElement.GetProperty("Seed").GetInt32()));
    }

    [Fact]
    public void The_evaluator_runs_the_scenes_of_its_seed_base()
    {
        var atZero = new SceneRecorder();
        var atBase = new SceneRecorder();
        var again = new SceneRecorder();
        Evaluator.EvaluateSplit(atZero, SimSplits.Seen, new EvaluationOptions(EpisodesPerSplit: 6, ParallelEnvs: 3));
        Evaluator.EvaluateSplit(atBase, SimSplits.Seen, new EvaluationOptions(EpisodesPerSplit: 6, ParallelEnvs: 3, SeedBase: 1_000));
        Evaluator.EvaluateSplit(again, SimSplits.Seen, new EvaluationOptions(EpisodesPerSplit: 6, ParallelEnvs: 2, SeedBase: 1_000));

        Assert.Equal(Enumerable.Range(2_000_000, 6).Select(i => (long)i), atZero.Scenes.Keys.Order());
        Assert.Equal(Enumerable.Range(2_001_000, 6).Select(i => (long)i), atBase.Scenes.Keys.Order());
        Assert.Equal(Scenes(SimSplits.Seen, 1_000, 6), atBase.Scenes.OrderBy(kv => kv.Key).Select(kv => kv.Value));
        Assert.Equal(atBase.Scenes.OrderBy(kv => kv.Key), again.Scenes.OrderBy(kv => kv.Key));
        Assert.Empty(atZero.Scenes.Values.Intersect(atBase.Scenes.Values));
    }

    [Fact]
    public void A_seed_base_never_reaches_into_the_next_splits_seeds()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => SimSplits.Seen.SeedOf(0, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => SimSplits.Seen.SeedOf(10, SimSplits.SeedStride - 10));
        Assert.Equal(2_999_999, SimSplits.Seen.SeedOf(9, SimSplits.SeedStride - 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => Evaluator.EvaluateSplit(new ScriptedExpert(), SimSplits.Seen,
            new EvaluationOptions(EpisodesPerSplit: 20, SeedBase: SimSplits.SeedStride - 10)));
        Assert.Throws<ArgumentOutOfRangeException>(() => Evaluator.EvaluateSplit(new ScriptedExpert(), SimSplits.Seen,
            new EvaluationOptions(EpisodesPerSplit: 2, SeedBase: -5)));
    }

    [Fact]
    public void The_summary_gives_seen_and_unseen_success_as_fractions_with_wilson_intervals_and_ends_with_them()
    {
        var options = new EvaluationOptions(EpisodesPerSplit: 8, ParallelEnvs: 8, SeedBase: 700);
        var results = Evaluator.Evaluate(new ScriptedExpert(), [SimSplits.Seen, SimSplits.UnseenObjects, SimSplits.Unseen], options);

        var summary = EvaluationSummary.Of(results, options);

        Assert.Equal((700, 8), (summary.SeedBase, summary.EpisodesPerSplit));
        Assert.Equal(results.Single(r => r.Split == "seen").Overall, summary.Seen);
        Assert.Equal(results.Single(r => r.Split == "unseen").Overall, summary.Unseen);
        Assert.Equal((double)summary.Seen!.Successes / 8, summary.SuccessSeen);
        Assert.Equal(Wilson.Interval(summary.Unseen!.Successes, 8), (summary.Unseen.Low, summary.Unseen.High));
        var lines = summary.ToText().Split('\n');
        Assert.Equal($"success_seen: {summary.SuccessSeen!.Value.ToString("0.####", System.Globalization.CultureInfo.InvariantCulture)}", lines[^2]);
        Assert.StartsWith("success_unseen: ", lines[^1]);
        Assert.Equal(summary.SuccessUnseen!.Value, double.Parse(lines[^1]["success_unseen: ".Length..], System.Globalization.CultureInfo.InvariantCulture), 4);
        Assert.Contains("seed_base: 700", lines);

        var json = JsonDocument.Parse(summary.ToJson()).RootElement;
        Assert.Equal(summary.SuccessSeen.Value, json.GetProperty("success_seen").GetDouble());
        Assert.Equal(summary.Unseen.Low, json.GetProperty("unseen").GetProperty("low").GetDouble());
        Assert.Equal(700, json.GetProperty("seed_base").GetInt32());
    }

    [Fact]
    public void A_summary_without_the_unseen_split_says_so()
    {
        var options = new EvaluationOptions(EpisodesPerSplit: 2);
        var summary = EvaluationSummary.Of(Evaluator.Evaluate(new ScriptedExpert(), [SimSplits.Seen], options), options);

        Assert.Null(summary.Unseen);
        Assert.Equal("success_unseen: n/a", summary.ToText().Split('\n')[^1]);
    }

    private static List<string> Scenes(SimSplit split, int seedBase, int count) =>
        [.. Enumerable.Range(0, count).Select(e => Describe(SceneGenerator.ForEpisode(split, e, SceneGenerator.KindOf(e, Both), seedBase)))];

    /// <summary>A scene as JSON: records holding lists compare by reference, their JSON by value.</summary>
    private static string Describe(SceneSpec scene) => JsonSerializer.Serialize(scene);

    /// <summary>Records the scene each episode id started from, and stands still.</summary>
    private sealed class SceneRecorder : IActionController
    {
        public Dictionary<long, string> Scenes { get; } = [];

        public bool NeedsImages => false;

        public IReadOnlyList<ActionChunk> Act(IReadOnlyList<SimObservation> batch)
        {
            foreach (var o in batch) Scenes.TryAdd(o.EpisodeId, Describe(o.Privileged.Scene));
            return [.. batch.Select(_ => new ActionChunk(1, 3, [0f, 0f, 0f]))];
        }
    }
}
