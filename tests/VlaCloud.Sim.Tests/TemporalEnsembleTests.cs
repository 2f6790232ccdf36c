using VlaCloud.Actions;
using VlaCloud.Sim;

namespace VlaCloud.Sim.Tests;

public sealed class TemporalEnsembleTests
{
    /// <summary>Answers each call with a scripted chunk per episode and step, and records what it was asked.</summary>
    private sealed class Scripted(Func<long, int, ActionChunk> chunk) : IActionController
    {
        public List<(long Episode, int Step)> Asked { get; } = [];
        public bool NeedsImages => false;
        public IReadOnlyList<ActionChunk> Act(IReadOnlyList<SimObservation> batch)
        {
            Asked.AddRange(batch.Select(o => (o.EpisodeId, o.Step)));
            return [.. batch.Select(o => chunk(o.EpisodeId, o.Step))];
        }
    }

    private static readonly SceneSpec Scene = SceneGenerator.Generate(SimSplits.Seen, 7, TaskKind.PickPlace);

    private static SimObservation At(long episode, int step) =>
        new(episode, step, Scene.Task.Instruction, [0.5f, 0.5f, 1f], new Dictionary<string, byte[]>(), new TabletopWorld(Scene).Snapshot());

    private static ActionChunk Constant(int length, params float[] action) => ActionChunk.FromRows([.. Enumerable.Range(0, length).Select(_ => action)]);

    [Fact]
    public void Each_step_executes_one_action_mixed_from_every_chunk_that_covers_it()
    {
        // Chunk asked at step s says s for every action; with alpha 0 the ensemble is the plain mean of the covering chunks.
        var inner = new Scripted((_, step) => Constant(3, step, 0, 0));
        var ensemble = new TemporalEnsemble(inner, horizon: 3, alpha: 0);
        float Executed(int step) => ensemble.Act([At(1, step)]) is [{ Horizon: 1 } only] ? only[0, 0] : throw new InvalidOperationException("expected one action");

        Assert.Equal(0f, Executed(0));
        Assert.Equal(0.5f, Executed(1));          // chunks from steps 0 and 1
        Assert.Equal(1f, Executed(2));            // 0, 1, 2
        Assert.Equal(2f, Executed(3));            // 1, 2, 3: the chunk from step 0 no longer reaches step 3
        Assert.Equal(4, inner.Asked.Count);
    }

    [Fact]
    public void Chunks_that_disagree_with_the_newest_weigh_less()
    {
        // Step 0 predicts moving right for two steps; step 1 predicts moving left: cos = −1 against cos = 1.
        var inner = new Scripted((_, step) => Constant(2, step == 0 ? 1f : -1f, 0, 0));
        var ensemble = new TemporalEnsemble(inner, horizon: 2, alpha: 1);
        ensemble.Act([At(1, 0)]);
        var mixed = ensemble.Act([At(1, 1)])[0][0, 0];
        var expected = (Math.Exp(-1) * 1 + Math.Exp(1) * -1) / (Math.Exp(-1) + Math.Exp(1));
        Assert.Equal(expected, mixed, 5);
    }

    [Fact]
    public void Episodes_keep_separate_histories_and_a_restarted_episode_starts_afresh()
    {
        var inner = new Scripted((episode, _) => Constant(4, episode, 0, 1));
        var ensemble = new TemporalEnsemble(inner, horizon: 4, alpha: 0);
        var first = ensemble.Act([At(1, 0), At(2, 0)]);
        Assert.Equal([1f, 0f, 1f], first[0][0].ToArray());
        Assert.Equal([2f, 0f, 1f], first[1][0].ToArray());
        var second = ensemble.Act([At(1, 1), At(2, 1)]);
        Assert.Equal(1f, second[0][0, 0]);
        Assert.Equal(2f, second[1][0, 0]);

        // The same id back at step 0 is a new episode: nothing from before is mixed in.
        var restarted = false;
        var restartInner = new Scripted((_, step) => Constant(4, step == 0 && restarted ? 9f : 1f, 0, 0));
        var restart = new TemporalEnsemble(restartInner, horizon: 4, alpha: 0);
        restart.Act([At(5, 0)]);
        restart.Act([At(5, 1)]);
        restarted = true;
        Assert.Equal(9f, restart.Act([At(5, 0)])[0][0, 0]);
    }

    [Fact]
    public void With_the_expert_inside_every_evaluation_episode_still_succeeds()
    {
        var result = Evaluator.EvaluateSplit(new TemporalEnsemble(new ScriptedExpert()), SimSplits.Seen, new EvaluationOptions(EpisodesPerSplit: 6, ParallelEnvs: 3));
        Assert.Equal(6, result.Overall.Successes);
    }
}
