using VlaCloud.Policy;
using VlaCloud.Sim;

namespace VlaCloud.Training.Tests;

[Collection(SimDataCollection.Name)]
public sealed class PolicyControllerTests(SimDataFixture fixture)
{
    [Fact]
    public void The_controller_answers_a_batch_of_observations_with_one_chunk_of_embodiment_actions_each()
    {
        using var policy = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, SimDataFixture.Options(1));
        var controller = new PolicyController(policy, SimEmbodiment.Tabletop);
        using var renderer = new Renderer(64);
        var observations = Enumerable.Range(0, 3).Select(i =>
        {
            var world = new TabletopWorld(SceneGenerator.ForEpisode(SimSplits.Seen, i, TaskKind.PickPlace));
            var state = world.Snapshot();
            return new SimObservation(i, 0, world.Scene.Task.Instruction, world.State(), renderer.RenderAll(state, SimEmbodiment.Tabletop), state);
        }).ToArray();

        var chunks = controller.Act(observations);

        Assert.Equal(1, controller.Calls);
        Assert.Equal(3, chunks.Count);
        Assert.All(chunks, c =>
        {
            Assert.Equal((policy.Config.ChunkLength, 3), (c.Horizon, c.ActionDim));
            for (var t = 0; t < c.Horizon; t++) Assert.Contains(c[t, 2], new[] { 0f, 1f });
        });
    }

    [Fact]
    public void The_controller_drives_closed_loop_episodes_with_one_forward_pass_per_batch_of_environments()
    {
        using var policy = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, SimDataFixture.Options(1));
        var controller = new PolicyController(policy, SimEmbodiment.Tabletop);
        var result = Evaluator.EvaluateSplit(controller, SimSplits.Seen, new EvaluationOptions(EpisodesPerSplit: 4, ParallelEnvs: 4, ExecuteSteps: 8));

        Assert.Equal(4, result.Overall.Episodes);
        // Four environments in lockstep share each call; an untrained policy runs every episode to the step limit.
        Assert.Equal(controller.Calls, result.ControllerCalls);
        Assert.True(controller.Calls <= SimEmbodiment.Tabletop.MaxEpisodeSteps / 8 + 1, $"{controller.Calls} calls");
    }

    [Fact]
    public void The_controllers_view_of_the_live_simulator_is_the_observation_training_read_from_the_dataset()
    {
        // Train/eval parity: replaying each demonstration's scene live, every frame the controller would
        // feed the model (cameras, order, pixels, state, instruction) and the expert's action there must
        // equal what TrainingData decoded from the dataset for that frame.
        using var policy = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, SimDataFixture.Options(1));
        var controller = new PolicyController(policy, SimEmbodiment.Tabletop);
        using var renderer = new Renderer(SimEmbodiment.Tabletop.Cameras[0].Width);
        var meta = File.ReadLines(Path.Combine(fixture.TrainFolder, "meta", "episodes.jsonl"))
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
            .ToDictionary(e => e.GetProperty("episode_index").GetInt32(), e => (
                Seed: e.GetProperty("seed").GetInt32(),
                Kind: e.GetProperty("task_kind").GetString() == "push" ? TaskKind.Push : TaskKind.PickPlace));

        var frames = 0;
        foreach (var episode in fixture.Data.Episodes)
        {
            var (seed, kind) = meta[episode.Index];
            var world = new TabletopWorld(SceneGenerator.Generate(SimSplits.Train, seed, kind));
            for (var t = 0; t < episode.Length; t++, frames++)
            {
                var state = world.Snapshot();
                var live = controller.ToObservation(new SimObservation(episode.Index, t, world.Scene.Task.Instruction, world.State(),
                    renderer.RenderAll(state, SimEmbodiment.Tabletop), state));
                var recorded = episode.Observations[t];
                Assert.Equal(recorded.Instruction, live.Instruction);
                Assert.Equal(recorded.Embodiment, live.Embodiment);
                Assert.Equal(recorded.State, live.State);
                Assert.Equal(recorded.Images.Count, live.Images.Count);
                for (var c = 0; c < live.Images.Count; c++)
                {
                    Assert.Equal((recorded.Images[c].Width, recorded.Images[c].Height), (live.Images[c].Width, live.Images[c].Height));
                    Assert.True(recorded.Images[c].Rgb.AsSpan().SequenceEqual(live.Images[c].Rgb), $"episode {episode.Index} frame {t}: camera {c} differs");
                }
                var action = ScriptedExpert.NextAction(state);
                Assert.Equal(episode.Actions[t], action);
                world.Apply(action);
            }
            Assert.True(world.IsSuccess);
        }
        Assert.Equal(fixture.Data.Frames, frames);
    }

    [Fact]
    public void A_policy_without_the_embodiments_statistics_is_refused()
    {
        using var policy = VlaPolicy.Create(SimDataFixture.Micro, new Dictionary<string, NormalizationStats> { ["other-robot"] = fixture.Data.Normalization });
        var error = Assert.Throws<ArgumentException>(() => new PolicyController(policy, SimEmbodiment.Tabletop));
        Assert.Contains("sim-tabletop", error.Message);
    }
}
