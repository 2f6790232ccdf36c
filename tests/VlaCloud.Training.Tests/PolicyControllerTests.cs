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
            Assert.Equal(policy.Config.ChunkLength, c.Length);
            Assert.All(c, a =>
            {
                Assert.Equal(3, a.Length);
                Assert.Contains(a[2], new[] { 0f, 1f });
            });
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
    public void A_policy_without_the_embodiments_statistics_is_refused()
    {
        using var policy = VlaPolicy.Create(SimDataFixture.Micro, new Dictionary<string, NormalizationStats> { ["other-robot"] = fixture.Data.Normalization });
        var error = Assert.Throws<ArgumentException>(() => new PolicyController(policy, SimEmbodiment.Tabletop));
        Assert.Contains("sim-tabletop", error.Message);
    }
}
