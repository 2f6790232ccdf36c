using VlaCloud.Policy;

namespace VlaCloud.Training.Tests;

[Collection(SimDataCollection.Name)]
public sealed class NewHeadTrainingTests(SimDataFixture fixture)
{
    [Fact]
    public void A_base_for_seven_actions_given_a_new_head_trains_on_a_four_action_robot_and_acts_in_its_four_dimensions()
    {
        // The simulator's demonstrations as a 4-action robot's: a fourth action dimension, statistics to match.
        const string robot = "four-arm";
        var episodes = fixture.Data.Episodes.Select(e => e with
        {
            Observations = [.. e.Observations.Select(o => o with { Embodiment = robot })],
            Actions = [.. e.Actions.Select(a => new[] { a[0], a[1], a[2], a[0] - a[1] })],
        }).ToList();
        var stats = fixture.Data.Normalization with { Action = FeatureStats.Compute([.. episodes.SelectMany(e => e.Actions)]) };
        var data = new TrainingData(robot, stats, episodes, fixture.Data.Spatial);
        var state = fixture.Data.Normalization.StateDim;
        var seven = new EmbodimentLayout(7, 7, 2);
        var options = SimDataFixture.Options(3);
        using var basePolicy = VlaPolicy.Create(SimDataFixture.Micro.ForLayout(seven),
            new Dictionary<string, NormalizationStats> { ["seven-arm"] = new(FeatureStats.Compute([new float[7], Enumerable.Repeat(1f, 7).ToArray()]), FeatureStats.Compute([new float[7], new float[7]])) },
            seed: 3);

        var head = basePolicy.WithNewHead(seven, new EmbodimentLayout(4, state, 2), options.Seed);
        using var initial = head.Policy;
        var copiedBefore = initial.NamedParameters().Where(p => !head.Reinitialised.Contains(p.Name)).ToDictionary(p => p.Name, p => p.Parameter.clone());
        var baseWeights = basePolicy.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        Assert.All(copiedBefore, p => Assert.True(p.Value.equal(baseWeights[p.Key]).all().item<bool>(), $"{p.Key} differs from the base before training"));
        Assert.Contains("expert.actionOut.weight", head.Reinitialised);

        var run = CoTrainer.Train(initial, data, options);
        using var trained = run.Policy;
        Assert.Equal(3, run.Final!.Step);
        Assert.True(double.IsFinite(run.Final.Loss));
        var chunk = trained.SampleActions(episodes[0].Observations[0], 1);
        Assert.Equal((trained.Config.ChunkLength, 4), (chunk.Horizon, chunk.ActionDim));
        foreach (var tensor in copiedBefore.Values) tensor.Dispose();
    }
}
