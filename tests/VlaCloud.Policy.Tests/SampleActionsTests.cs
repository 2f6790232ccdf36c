using TorchSharp;
using static TorchSharp.torch;
using VlaCloud.Actions;

namespace VlaCloud.Policy.Tests;

public sealed class SampleActionsTests : IDisposable
{
    private readonly VlaPolicy policy = TestData.Tiny();

    public void Dispose() => policy.Dispose();

    [Fact]
    public void Each_sample_gets_a_chunk_of_its_own_embodiments_action_dimension_in_its_units()
    {
        var chunks = policy.SampleActions([TestData.Observation(0), TestData.Observation(1, TestData.Gripper)], [1, 2], steps: 4);
        Assert.Equal([PolicyConfig.Tiny.ChunkLength, 7], new[] { chunks[0].Horizon, chunks[0].ActionDim });
        Assert.Equal([PolicyConfig.Tiny.ChunkLength, 3], new[] { chunks[1].Horizon, chunks[1].ActionDim });
        for (var s = 0; s < PolicyConfig.Tiny.ChunkLength; s++)
        {
            Assert.Contains(chunks[0][s, 6], new[] { 0f, 1f });                    // the binary gripper
            for (var d = 0; d < 3; d++) Assert.InRange(chunks[0][s, d], -1f, 1f);  // q01..q99 of the arm
            for (var d = 0; d < 3; d++) Assert.InRange(chunks[1][s, d], -0.5f, 0.5f);
        }
    }

    [Fact]
    public void A_batch_gives_the_same_actions_as_each_sample_alone()
    {
        var observations = Enumerable.Range(0, 5).Select(i => TestData.Observation(i, i == 3 ? TestData.Gripper : TestData.Arm)).ToArray();
        long[] seeds = [11, 22, 33, 44, 55];
        var batched = policy.SampleActions(observations, seeds, steps: 5);
        for (var i = 0; i < observations.Length; i++)
        {
            var alone = policy.SampleActions(observations[i], seeds[i], steps: 5);
            Assert.Equal((alone.Horizon, alone.ActionDim), (batched[i].Horizon, batched[i].ActionDim));
            foreach (var (a, b) in alone.Values.ToArray().Zip(batched[i].Values.ToArray())) Assert.Equal(a, b, 1e-4f);
        }
    }

    [Fact]
    public void A_batch_sampled_a_step_at_a_time_with_another_batchs_steps_in_between_gives_exactly_the_actions_of_running_it_alone()
    {
        // What the inference worker does when it slices batches between denoising steps: a long batch and a short one in
        // flight together, their steps interleaved; each must end with the same numbers as its batch run back to back.
        Observation[] shortBatch = [TestData.Observation(0), TestData.Observation(1, TestData.Gripper)];
        Observation[] longBatch = [TestData.Observation(2), TestData.Observation(3)];
        var shortAlone = policy.SampleActions(shortBatch, [5, 6], steps: 3);
        var longAlone = policy.SampleActions(longBatch, [7, 8], steps: 12);

        using var longSampling = policy.StartSampling(longBatch, [7, 8], steps: 12);
        longSampling.Step();
        using var shortSampling = policy.StartSampling(shortBatch, [5, 6], steps: 3);
        while (!shortSampling.Done)
        {
            shortSampling.Step();
            longSampling.Step();
        }
        var shortSliced = shortSampling.Finish();
        while (!longSampling.Done) longSampling.Step();
        var longSliced = longSampling.Finish();

        Assert.Equal((3, 12), (shortSampling.Steps, longSampling.Steps));
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(shortAlone[i].Values.ToArray(), shortSliced[i].Values.ToArray());
            Assert.Equal(longAlone[i].Values.ToArray(), longSliced[i].Values.ToArray());
        }
        Assert.Throws<InvalidOperationException>(() => shortSampling.Step());
    }

    [Fact]
    public void The_same_seed_gives_the_same_actions_and_another_seed_others()
    {
        var o = TestData.Observation(2);
        var first = policy.SampleActions(o, 7, steps: 3);
        var again = policy.SampleActions(o, 7, steps: 3);
        var other = policy.SampleActions(o, 8, steps: 3);
        Assert.Equal(first.Values.ToArray(), again.Values.ToArray());
        Assert.NotEqual(first.Values.ToArray().Take(6), other.Values.ToArray().Take(6));
    }

    [Fact]
    public void An_unknown_embodiment_or_too_many_cameras_is_refused_with_a_clear_message()
    {
        var e = Assert.Throws<ArgumentException>(() => policy.SampleActions(TestData.Observation(0, "ufo"), 1));
        Assert.Contains("unknown embodiment 'ufo'", e.Message);
        var o = TestData.Observation(0);
        var three = o with { Images = [o.Images[0], o.Images[0], o.Images[0]] };
        Assert.Contains("at most 2", Assert.Throws<ArgumentException>(() => policy.SampleActions(three, 1)).Message);
    }

    [Fact]
    public void Live_tensors_stay_flat_over_500_calls()
    {
        var o = TestData.Observation(0);
        var observations = new[] { o with { Images = [o.Images[0]] } };
        policy.SampleActions(observations, [1], steps: 1); // warm-up
        var stats = DisposeScopeManager.Statistics;
        var before = stats.TensorStatistics.ThreadTotalLiveCount;
        for (var i = 0; i < 500; i++) policy.SampleActions(observations, [i], steps: 1);
        Assert.Equal(before, stats.TensorStatistics.ThreadTotalLiveCount);
        // Spatial decoding (with its KV cache) is leak-free too.
        policy.GenerateSpatial(observations, SpatialKind.Trajectory);
        Assert.Equal(before, stats.TensorStatistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void Spatial_generation_returns_well_formed_coordinates_inside_the_first_image()
    {
        var observations = new[] { TestData.Observation(0), TestData.Observation(1) with { Images = [TestData.Image(3, 3, TestData.Red, size: 48)] } };
        foreach (var kind in Enum.GetValues<SpatialKind>())
        {
            var predictions = policy.GenerateSpatial(observations, kind);
            Assert.Equal(2, predictions.Length);
            for (var i = 0; i < 2; i++)
            {
                var p = predictions[i];
                Assert.Equal(kind, p.Kind);
                if (kind is SpatialKind.Point or SpatialKind.Placement) Assert.Equal(2, p.Coordinates.Length);
                else if (kind == SpatialKind.Box)
                {
                    Assert.Equal(4, p.Coordinates.Length);
                    Assert.True(p.Coordinates[0] <= p.Coordinates[2] && p.Coordinates[1] <= p.Coordinates[3], "a box's first corner is its top-left");
                }
                else Assert.InRange(p.Coordinates.Length, 2, 2 * PolicyConfig.Tiny.MaxTrajectoryPoints);
                Assert.Equal(0, p.Coordinates.Length % 2);
                var size = observations[i].Images[0].Width;
                Assert.All(p.Coordinates, c => Assert.InRange(c, 0f, size));
                Assert.All(p.Tokens, t => Assert.True(policy.Tokenizer.IsLocation(t)));
            }
        }
    }

    [Fact]
    public void Spatial_answers_see_only_the_first_image_while_actions_see_every_camera()
    {
        var main = TestData.Image(10, 40, TestData.Red);
        var withBlueWrist = new Observation([main, TestData.Image(40, 10, TestData.Blue)], "pick the red cube", null, TestData.Arm);
        var withGreenWrist = withBlueWrist with { Images = [main, TestData.Image(20, 20, TestData.Green)] };
        var mainOnly = withBlueWrist with { Images = [main] };

        foreach (var kind in Enum.GetValues<SpatialKind>())
        {
            var answers = policy.GenerateSpatial([withBlueWrist, withGreenWrist, mainOnly], kind);
            Assert.Equal(answers[2].Tokens, answers[0].Tokens);
            Assert.Equal(answers[2].Tokens, answers[1].Tokens);
        }
        // The second view is not dropped everywhere: the action expert's conditioning changes with it.
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var conditions = policy.St4Vla.Condition([withBlueWrist, withGreenWrist], gradientDecay: 1);
        Assert.True((conditions[0] - conditions[1]).abs().max().item<float>() > 1e-4f);
    }

    [Fact]
    public void A_point_guided_policy_acts_on_system_2s_point_and_placement_answers_unless_given_guides()
    {
        using var guided = TestData.Tiny(seed: 3, PolicyConfig.Tiny with { PointGuidance = true });
        var observations = Enumerable.Range(0, 3).Select(i => TestData.Observation(i)).ToArray();
        long[] seeds = [5, 6, 7];

        // Both questions of every observation are decoded in one batch, with the answers each question gets alone.
        var guides = guided.GeneratePointGuides(observations);
        var points = guided.GenerateSpatial(observations, SpatialKind.Point);
        var placements = guided.GenerateSpatial(observations, SpatialKind.Placement);
        for (var i = 0; i < observations.Length; i++)
        {
            Assert.Equal(points[i].Coordinates, guides[i].Target);
            Assert.Equal(placements[i].Coordinates, guides[i].Destination);
        }
        var asked = guided.SampleActions(observations, seeds);
        var given = guided.SampleActions(observations, seeds, guides: guides);
        for (var i = 0; i < observations.Length; i++) Assert.Equal(Flat(asked[i]), Flat(given[i]));

        var malformed = Assert.Throws<ArgumentException>(() => guided.SampleActions([observations[0]], [1], guides: [new PointGuide([1, 2, 3], null)]));
        Assert.Contains("target", malformed.Message);
        Assert.Throws<ArgumentException>(() => policy.SampleActions([observations[0]], [1], guides: [guides[0]]));
    }

    private static float[] Flat(ActionChunk chunk) => chunk.Values.ToArray();
}
