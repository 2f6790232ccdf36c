using VlaCloud.Actions;
using VlaCloud.Policy;
using VlaCloud.Sim;

namespace VlaCloud.Training.Tests;

[Collection(SimDataCollection.Name)]
public sealed class DirectionProbeTests(SimDataFixture fixture)
{
    private static IReadOnlyList<ActionSample> ExpertChunks(TrainingData data, int chunkLength) =>
        [.. Enumerable.Range(0, data.Frames).Select(new BatchSampler(data, new CoTrainingOptions().AsVanilla(), chunkLength).ActionAt)];

    [Fact]
    public void The_experts_own_chunks_score_every_sign_and_gripper_right_with_no_error()
    {
        var expert = ExpertChunks(fixture.Data, 8);
        var score = DirectionProbe.Score([.. expert.Select(s => s.Actions)], expert);

        Assert.Equal(fixture.Data.Frames, score.Frames);
        // Masked steps past an episode's end are not scored: each frame scores min(8, frames left) steps.
        Assert.Equal(fixture.Data.Episodes.Sum(e => Enumerable.Range(0, e.Length).Sum(t => Math.Min(8, e.Length - t))), score.Steps);
        Assert.Equal((0.0, 0.0), (score.MseX, score.MseY));
        Assert.True(score.SignedX > 0 && score.SignedY > 0 && score.SignedFirst > 0);
        Assert.Equal((1.0, 1.0, 1.0, 1.0, 1.0), (score.SignRightX, score.SignRightY, score.SignRight, score.SignRightFirst, score.GripperRight));
        Assert.True(score.ZeroMse > 0);
        // Both tasks move every way across the table: no one diagonal is right everywhere.
        Assert.InRange(score.MajoritySign, 0.5, 0.9);
        Assert.InRange(score.MajorityGripper, 0.5, 1);
    }

    [Fact]
    public void Predicting_no_move_scores_the_zero_baseline_and_no_sign_right_and_the_opposite_move_every_sign_wrong()
    {
        var expert = ExpertChunks(fixture.Data, 8);
        var still = DirectionProbe.Score([.. expert.Select(s => new ActionChunk(s.Actions.Horizon, s.Actions.ActionDim, new float[s.Actions.Values.Length]))], expert);
        Assert.Equal(still.ZeroMseX, still.MseX, 12);
        Assert.Equal(still.ZeroMseY, still.MseY, 12);
        Assert.Equal(0, still.SignRight);

        var opposite = DirectionProbe.Score([.. expert.Select(s => ActionChunk.FromRows([.. s.Actions.ToRows().Select(r => new[] { -r[0], -r[1], r[2] })]))], expert);
        Assert.Equal((0.0, 0.0, 1.0), (opposite.SignRight, opposite.SignRightFirst, opposite.GripperRight));
        Assert.Equal(still.MajoritySign, opposite.MajoritySign);
        Assert.Equal(4 * still.ZeroMse, opposite.Mse, 9);
    }

    [Fact]
    public void Only_expert_moves_above_the_threshold_are_scored_for_sign()
    {
        var expert = new ActionSample(null!, ActionChunk.FromRows([[0.04f, 0.001f, 1f], [-0.03f, 0f, 1f], [0.02f, 0.02f, 0f]]), [true, true, false]);
        var predicted = ActionChunk.FromRows([[0.01f, -0.02f, 1f], [0.01f, 0.01f, 0f], [-1f, -1f, 1f]]);

        var score = DirectionProbe.Score([predicted], [expert], signThreshold: 0.005);

        // Step 2 is past the episode's end; of the rest only the two dx moves are large enough, and the first is right.
        Assert.Equal((1, 2, 2, 0, 1), (score.Frames, score.Steps, score.SignedX, score.SignedY, score.SignedFirst));
        Assert.Equal((0.5, 1.0, 0.5, 0.5), (score.SignRightX, score.SignRightFirst, score.GripperRight, score.MajoritySign));
        Assert.Equal(1.0, score.MajorityGripper);
        Assert.Equal((0.03 * 0.03 + 0.04 * 0.04) / 2, score.MseX, 6);
    }

    [Fact]
    public void The_sign_shares_error_is_taken_over_episodes_not_over_components()
    {
        var expert = new ActionSample(null!, ActionChunk.FromRows([[0.04f, 0.04f, 0f]]));
        var right = ActionChunk.FromRows([[0.01f, 0.01f, 0f]]);
        var wrong = ActionChunk.FromRows([[-0.01f, -0.01f, 0f]]);

        // Episode 1 gets all four of its components right, episode 2 none: half right, and with two scenes that can
        // hardly be told from 0 or 1 (error 0.5), however many components each scene has.
        var score = DirectionProbe.Score([right, right, wrong, wrong], [expert, expert, expert, expert], episodes: [1, 1, 2, 2]);
        Assert.Equal(0.5, score.SignRight);
        Assert.Equal(0.5, score.SignRightStdError!.Value, 12);
        // Mixed within each episode: the episodes agree, so the error over them is 0.
        Assert.Equal(0.0, DirectionProbe.Score([right, wrong, right, wrong], [expert, expert, expert, expert], episodes: [1, 1, 2, 2]).SignRightStdError!.Value, 12);
        Assert.Null(DirectionProbe.Score([right, wrong], [expert, expert]).SignRightStdError);
        Assert.Null(DirectionProbe.Score([right, wrong], [expert, expert], episodes: [1, 1]).SignRightStdError);
    }

    [Fact]
    public void A_fresh_policy_is_probed_on_fresh_expert_demonstrations_with_scores_in_range()
    {
        using var policy = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, SimDataFixture.Options(1));
        var controller = new PolicyController(policy, SimEmbodiment.Tabletop);
        var data = DirectionProbe.Demonstrations(controller, SimSplits.Seen, 2, 7000, [TaskKind.PickPlace, TaskKind.Push], SimEmbodiment.Tabletop,
            policy.Normalization[SimEmbodiment.Tabletop.Name]);

        Assert.Equal([SimSplits.Seen.SeedOf(0, 7000), SimSplits.Seen.SeedOf(1, 7000)], data.Episodes.Select(e => e.Index));
        var frames = DirectionProbe.Frames(data, 10);
        Assert.Equal(10, frames.Count);
        Assert.Equal(0, frames[0]);
        Assert.True(frames.Zip(frames.Skip(1)).All(p => p.First < p.Second) && frames[^1] < data.Frames);

        var score = DirectionProbe.Run(controller, data, frames, batchSize: 4);
        Assert.Equal(3, controller.Calls);
        Assert.Equal(10, score.Frames);
        Assert.All(new[] { score.SignRight, score.SignRightFirst, score.GripperRight }, x => Assert.InRange(x, 0, 1));
        Assert.True(score.Mse >= 0 && score.ZeroMse > 0, $"{score}");
        Assert.InRange(score.SignRightStdError!.Value, 0, 0.5);
        // The same frames and noise keys give the same chunks: the probe is deterministic.
        Assert.Equal(score, DirectionProbe.Run(controller, data, frames, batchSize: 3));
    }
}
