using VlaCloud.Actions;
using VlaCloud.Policy;
using VlaCloud.Sim;

namespace VlaCloud.Training.Tests;

/// <summary>
/// Oracle guides (<see cref="PolicyController.OracleGuides"/>): a point-guided policy acting on the simulator's labels
/// instead of System 2's points, in the open-loop probe and in closed loop.
/// </summary>
[Collection(SimDataCollection.Name)]
public sealed class OracleGuideTests(SimDataFixture fixture)
{
    private static readonly TaskKind[] Tasks = [TaskKind.PickPlace, TaskKind.Push];

    /// <summary>A micro policy with the point token, trained two steps on the labels.</summary>
    private VlaPolicy Guided()
    {
        var options = SimDataFixture.Options(2) with { PointGuidance = true };
        var initial = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, options);
        var trained = CoTrainer.Train(initial, fixture.Data, options).Policy;
        if (!ReferenceEquals(initial, trained)) initial.Dispose();
        Assert.True(trained.Config.PointGuidance);
        return trained;
    }

    [Fact]
    public void The_probe_with_oracle_guides_gives_each_frame_its_label_and_not_system_2s_points()
    {
        using var policy = Guided();
        var oracle = new PolicyController(policy, SimEmbodiment.Tabletop, oracleGuides: true);
        var system2 = new PolicyController(policy, SimEmbodiment.Tabletop);
        var data = DirectionProbe.Demonstrations(oracle, SimSplits.Seen, 2, 7000, Tasks, SimEmbodiment.Tabletop, policy.Normalization[SimEmbodiment.Tabletop.Name]);
        var frames = DirectionProbe.Frames(data, 8);

        var score = DirectionProbe.Run(oracle, data, frames, batchSize: 4);

        // The same frames sampled with their labels passed explicitly, in the same batches and noise keys.
        var sampler = new BatchSampler(data, new CoTrainingOptions().AsVanilla(), policy.Config.ChunkLength);
        var keys = data.Episodes.SelectMany(e => Enumerable.Range(0, e.Length).Select(t => ((long)e.Index, t))).ToArray();
        var labels = data.Episodes.SelectMany(e => e.Guides!).ToArray();
        Assert.All(frames, f => Assert.NotNull(labels[f]?.Target));
        var expert = frames.Select(sampler.ActionAt).ToArray();
        var predicted = new List<ActionChunk>();
        foreach (var batch in frames.Chunk(4))
            predicted.AddRange(system2.Sample([.. batch.Select(f => sampler.ActionAt(f).Observation)], [.. batch.Select(f => keys[f])], [.. batch.Select(f => labels[f])]));
        Assert.Equal(DirectionProbe.Score(predicted, expert, episodes: [.. frames.Select(f => keys[f].Item1)]), score);
        // Without the option the point token reads System 2's answers, and the chunks differ.
        Assert.NotEqual(score.Mse, DirectionProbe.Run(system2, data, frames, batchSize: 4).Mse);
    }

    [Fact]
    public void The_probe_with_oracle_guides_refuses_frames_without_labels()
    {
        using var policy = Guided();
        var oracle = new PolicyController(policy, SimEmbodiment.Tabletop, oracleGuides: true);
        var unlabelled = new TrainingData(fixture.Data.Embodiment, fixture.Data.Normalization,
            [.. fixture.Data.Episodes.Select(e => e with { Guides = null })], []);

        var error = Assert.Throws<InvalidOperationException>(() => DirectionProbe.Run(oracle, unlabelled, [0, 1], batchSize: 2));
        Assert.Contains("no target label", error.Message);
    }

    [Fact]
    public void A_policy_without_point_guidance_is_refused_oracle_guides()
    {
        using var policy = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, SimDataFixture.Options(1));
        var error = Assert.Throws<ArgumentException>(() => new PolicyController(policy, SimEmbodiment.Tabletop, oracleGuides: true));
        Assert.Contains("no point guidance", error.Message);
    }

    [Fact]
    public void The_guide_a_live_world_gives_is_the_label_the_dataset_generator_wrote_for_that_frame()
    {
        // Replaying each generated demonstration's scene live: at every frame the oracle guide of the world equals the
        // guide training read from the dataset's annotations (same pixels, same camera).
        var meta = File.ReadLines(Path.Combine(fixture.TrainFolder, "meta", "episodes.jsonl"))
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
            .ToDictionary(e => e.GetProperty("episode_index").GetInt32(), e => (
                Seed: e.GetProperty("seed").GetInt32(),
                Kind: e.GetProperty("task_kind").GetString() == "push" ? TaskKind.Push : TaskKind.PickPlace));
        var size = SimEmbodiment.Tabletop.Cameras[0].Width;
        foreach (var episode in fixture.Data.Episodes)
        {
            var (seed, kind) = meta[episode.Index];
            var world = new TabletopWorld(SceneGenerator.Generate(SimSplits.Train, seed, kind));
            for (var t = 0; t < episode.Length; t++)
            {
                var state = world.Snapshot();
                var live = PolicyController.OracleGuide(state, size);
                var label = episode.Guides![t]!;
                Assert.Equal(label.Target, live.Target);
                Assert.Equal(label.Destination, live.Destination);
                world.Apply(ScriptedExpert.NextAction(state));
            }
        }
    }

    [Fact]
    public void Closed_loop_with_oracle_guides_acts_at_step_0_on_the_label_the_dataset_generator_wrote_for_that_seed()
    {
        using var policy = Guided();
        var oracle = new PolicyController(policy, SimEmbodiment.Tabletop, oracleGuides: true);
        var recorder = new FirstCall(oracle);
        // The train split from seed base 0 with both task kinds: the generator's scenes, episode for episode.
        var result = Evaluator.EvaluateSplit(recorder, SimSplits.Train, new EvaluationOptions(EpisodesPerSplit: 2, ParallelEnvs: 2, Tasks: Tasks, SeedBase: 0));
        Assert.Equal(2, result.Overall.Episodes);

        var seeds = File.ReadLines(Path.Combine(fixture.TrainFolder, "meta", "episodes.jsonl"))
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
            .ToDictionary(e => (long)e.GetProperty("seed").GetInt32(), e => e.GetProperty("episode_index").GetInt32());
        var system2 = new PolicyController(policy, SimEmbodiment.Tabletop);
        Assert.Equal(2, recorder.Observations!.Count);
        for (var i = 0; i < recorder.Observations.Count; i++)
        {
            var o = recorder.Observations[i];
            Assert.Equal(0, o.Step);
            var label = fixture.Data.Episodes.Single(e => e.Index == seeds[o.EpisodeId]).Guides![0]!;
            var guide = PolicyController.OracleGuide(o.Privileged, SimEmbodiment.Tabletop.Cameras[0].Width);
            Assert.Equal(label.Target, guide.Target);
            Assert.Equal(label.Destination, guide.Destination);
            // The chunk the evaluator got is the one the policy samples with the dataset's label passed explicitly.
            var given = system2.Sample([system2.ToObservation(o)], [(o.EpisodeId, 0)], [label])[0];
            Assert.Equal(given.Values.ToArray(), recorder.Chunks![i].Values.ToArray());
            var own = system2.Sample([system2.ToObservation(o)], [(o.EpisodeId, 0)])[0];
            Assert.NotEqual(own.Values.ToArray(), recorder.Chunks[i].Values.ToArray());
        }
    }

    [Fact]
    public void An_m1_policy_with_oracle_guides_acts_on_the_live_worlds_labels()
    {
        using var policy = CoTrainer.CreatePolicy(VlaCloud.Policy.InternVla.InternVlaM1Sizes.Tiny.ToPolicyConfig(), fixture.Data,
            SimDataFixture.Options(1) with { PointGuidance = true }, tokenizerJson: VlaCloud.Policy.InternVla.QwenByteTokenizer.Json());
        Assert.Equal((PolicyConfig.InternVlaM1Family, true), (policy.Config.Family, policy.Config.PointGuidance));
        var oracle = new PolicyController(policy, SimEmbodiment.Tabletop, oracleGuides: true);
        using var renderer = new Renderer(SimEmbodiment.Tabletop.Cameras[0].Width);
        var world = new TabletopWorld(SceneGenerator.ForEpisode(SimSplits.Seen, 0, TaskKind.PickPlace));
        var state = world.Snapshot();
        var live = new SimObservation(5, 0, world.Scene.Task.Instruction, world.State(), renderer.RenderAll(state, SimEmbodiment.Tabletop), state);

        var chunk = oracle.Act([live])[0];

        var labels = EpisodeRecorder.RecordExpert(world.Scene, SimEmbodiment.Tabletop, renderer).Labels[0];
        var given = oracle.Sample([oracle.ToObservation(live)], [(5, 0)], [new PointGuide([labels.Target.Point[0], labels.Target.Point[1]], [labels.Destination.Point[0], labels.Destination.Point[1]])])[0];
        Assert.Equal(given.Values.ToArray(), chunk.Values.ToArray());
    }

    /// <summary>Passes every call to <paramref name="inner"/> and keeps the first call's observations and chunks.</summary>
    private sealed class FirstCall(IActionController inner) : IActionController
    {
        public IReadOnlyList<SimObservation>? Observations { get; private set; }

        public IReadOnlyList<ActionChunk>? Chunks { get; private set; }

        public IReadOnlyList<ActionChunk> Act(IReadOnlyList<SimObservation> batch)
        {
            var chunks = inner.Act(batch);
            if (Observations is null) (Observations, Chunks) = ([.. batch], chunks);
            return chunks;
        }
    }
}
