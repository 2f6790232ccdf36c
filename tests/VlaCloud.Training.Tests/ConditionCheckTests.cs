using VlaCloud.Policy;
using VlaCloud.Policy.InternVla;

namespace VlaCloud.Training.Tests;

[Collection(SimDataCollection.Name)]
public sealed class ConditionCheckTests(SimDataFixture fixture)
{
    public static TheoryData<string> Families => ["micro", "m1-tiny"];

    private static VlaPolicy Create(string family, TrainingData data)
    {
        var options = SimDataFixture.Options(1).AsVanilla();
        return family == "micro"
            ? CoTrainer.CreatePolicy(SimDataFixture.Micro, data, options)
            : CoTrainer.CreatePolicy(InternVlaM1Sizes.Tiny.ToPolicyConfig(), data, options, tokenizerJson: QwenByteTokenizer.Json());
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void With_one_frame_to_draw_from_both_pairings_lose_exactly_the_same(string family)
    {
        // Every chunk is the same frame, so "another frame's observation" is its own: any difference would come from
        // unpaired noise, timesteps or dropout, which would make the check measure randomness instead of the observation.
        var episode = fixture.Data.Episodes[0];
        var oneFrame = new TrainingData(fixture.Data.Embodiment, fixture.Data.Normalization,
            [episode with { Observations = [episode.Observations[3]], Actions = [episode.Actions[3]], Guides = null }], []);
        using var policy = Create(family, oneFrame);
        var use = ConditionCheck.Measure(policy, oneFrame, batches: 2, batchSize: 4);
        Assert.Equal(use.OwnObservation, use.OtherObservation);
        Assert.Equal(0, use.Gap);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Other_frames_observations_change_the_loss_once_the_head_has_trained(string family)
    {
        var data = fixture.Data.WithoutSpatial();
        using var fresh = Create(family, data);
        // Both families start their action output at zero, so an untrained head predicts the same whatever it sees:
        // the check reports no gap, as it should.
        var untrained = ConditionCheck.Measure(fresh, data, batches: 2, batchSize: 4);
        Assert.Equal(untrained.OwnObservation, untrained.OtherObservation);
        // A few steps make the output depend on the condition; the losses differ only if the observations were swapped.
        using var trained = CoTrainer.Train(fresh, data, SimDataFixture.Options(5).AsVanilla()).Policy;
        var use = ConditionCheck.Measure(trained, data, batches: 2, batchSize: 4);
        Assert.True(use.OwnObservation > 0 && use.OtherObservation > 0, $"{use}");
        Assert.NotEqual(use.OwnObservation, use.OtherObservation);
    }

    [Fact]
    public void A_batch_of_one_is_refused_since_it_has_no_other_frame()
    {
        using var policy = Create("micro", fixture.Data);
        Assert.Throws<ArgumentOutOfRangeException>(() => ConditionCheck.Measure(policy, fixture.Data, batchSize: 1));
    }
}
