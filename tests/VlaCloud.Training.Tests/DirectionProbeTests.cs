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
    [Fact]
    public void Spatial_answers_are_scored_in_pixels_per_question_with_missing_answers_counted_as_misses()
    {
        PointGuide Guide(float[]? target, float[]? destination) => new(target, destination);
        PointGuide?[] labels = [Guide([10, 10], [20, 20]), Guide([30, 10], null), Guide([10, 40], [20, 20])];
        // Exact target, destination 5 px off (3, 4); target 3 px off, no destination asked; no answer at all.
        PointGuide?[] answers = [Guide([10, 10], [23, 24]), Guide([33, 10], [0, 0]), null];

        var score = DirectionProbe.ScoreSpatial(answers, labels);

        Assert.Equal(3, score.Frames);
        var target = score.Target;
        Assert.Equal((3, 2), (target.Questions, target.Answered));
        Assert.Equal(1.5, target.MeanErrorPx!.Value, 9);
        Assert.Equal((2 / 3.0, 2 / 3.0, 1 / 3.0), (target.Within4, target.Within8, target.Unanswered));
        var destination = score.Destination;
        // Frame 1 has no destination label: its answer is not scored.
        Assert.Equal((2, 1), (destination.Questions, destination.Answered));
        Assert.Equal(5, destination.MeanErrorPx!.Value, 9);
        Assert.Equal((0.0, 0.5, 0.5), (destination.Within4, destination.Within8, destination.Unanswered));
        // Both destinations are the same pixel: the blind guess is exact there.
        Assert.Equal((0.0, 1.0, 1.0), (destination.BlindErrorPx!.Value, destination.BlindWithin4, destination.BlindWithin8));
    }

    [Fact]
    public void An_answer_that_is_not_a_finite_point_is_unanswered_and_no_answers_give_no_error()
    {
        PointGuide?[] labels = [new([5, 5], null), new([6, 6], null)];
        var score = DirectionProbe.ScoreSpatial([new PointGuide([float.NaN, 5], null), new PointGuide([6], null)], labels);

        Assert.Equal((2, 0, 1.0), (score.Target.Questions, score.Target.Answered, score.Target.Unanswered));
        Assert.Null(score.Target.MeanErrorPx);
        Assert.Equal((0.0, 0.0), (score.Target.Within4, score.Target.Within8));
        Assert.Equal(0, score.Destination.Questions);
        Assert.Null(score.Destination.BlindErrorPx);
        Assert.Throws<ArgumentException>(() => DirectionProbe.ScoreSpatial([null], labels));
    }

    [Fact]
    public void The_blind_baseline_guesses_the_labels_mean_point_on_every_frame()
    {
        // Mean (4, 0): every label 4 px away; (4, 12) and (4, -12) add two 12 px misses around the same mean.
        PointGuide?[] labels = [new([0, 0], null), new([8, 0], null), new([4, 12], null), new([4, -12], null)];
        var exact = DirectionProbe.ScoreSpatial(labels, labels).Target;

        Assert.Equal((0.0, 1.0, 1.0, 0.0), (exact.MeanErrorPx!.Value, exact.Within4, exact.Within8, exact.Unanswered));
        Assert.Equal((4 + 4 + 12 + 12) / 4.0, exact.BlindErrorPx!.Value, 9);
        Assert.Equal((0.5, 0.5), (exact.BlindWithin4, exact.BlindWithin8));
    }

    [Fact]
    public void Fresh_demonstrations_carry_the_simulators_labels_and_a_fresh_spatial_policys_answers_are_scored_on_them()
    {
        using var policy = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, SimDataFixture.Options(1));
        Assert.False(policy.Config.Vanilla);
        var controller = new PolicyController(policy, SimEmbodiment.Tabletop);
        var data = DirectionProbe.Demonstrations(controller, SimSplits.Unseen, 2, 7000, [TaskKind.PickPlace, TaskKind.Push], SimEmbodiment.Tabletop,
            policy.Normalization[SimEmbodiment.Tabletop.Name]);

        var size = SimEmbodiment.Tabletop.Cameras[0].Width;
        Assert.All(data.Episodes, e => Assert.All(e.Guides!, g => Assert.All(new[] { g!.Target!, g.Destination! },
            p => Assert.True(p.Length == 2 && p.All(v => v >= 0 && v < size)))));

        var frames = DirectionProbe.Frames(data, 6);
        var score = DirectionProbe.RunSpatial(policy, data, frames, batchSize: 4);
        Assert.Equal(6, score.Frames);
        foreach (var s in new[] { score.Target, score.Destination })
        {
            Assert.Equal(6, s.Questions);
            Assert.All(new[] { s.Within4, s.Within8, s.Unanswered, s.BlindWithin4, s.BlindWithin8 }, x => Assert.InRange(x, 0, 1));
            Assert.True(s.Within4 <= s.Within8 && s.BlindWithin4 <= s.BlindWithin8, $"{s}");
            Assert.True(s.BlindErrorPx >= 0 && (s.MeanErrorPx is null || s.MeanErrorPx >= 0), $"{s}");
        }
        // Unlabelled frames (a dataset without annotations) leave nothing to score.
        var unlabelled = new TrainingData(data.Embodiment, data.Normalization, [.. data.Episodes.Select(e => e with { Guides = null })], []);
        Assert.Throws<InvalidOperationException>(() => DirectionProbe.RunSpatial(policy, unlabelled, frames));
    }
}
