using static TorchSharp.torch;
using VlaCloud.Actions;

namespace VlaCloud.Policy.Tests;

public sealed class TrainingTests
{
    private static TrainingBatch Batch()
    {
        var actions = Enumerable.Range(0, 4).Select(i =>
        {
            var chunk = ActionChunk.Create(PolicyConfig.Tiny.ChunkLength, 7, i, static (values, i) =>
            {
                for (var s = 0; s < values.Length / 7; s++)
                {
                    for (var d = 0; d < 6; d++) values[s * 7 + d] = 0.8f * MathF.Sin(0.4f * s + d + 2 * i);
                    values[s * 7 + 6] = (s + i) % 4 < 2 ? 1 : 0;
                }
            });
            var valid = Enumerable.Range(0, chunk.Horizon).Select(s => i != 3 || s < 5).ToArray(); // one episode ends early
            var o = TestData.Observation(i);
            return new ActionSample(o with { Images = [o.Images[0]] }, chunk, valid);
        }).ToList();
        var spatial = new List<SpatialSample>
        {
            new([TestData.Image(10, 40, TestData.Red)], SpatialPrompts.Question(SpatialKind.Point, "pick the red cube"), SpatialKind.Point, [16, 46]),
            new([TestData.Image(40, 8, TestData.Blue)], SpatialPrompts.Question(SpatialKind.Box, "push the blue block"), SpatialKind.Box, [40, 8, 52, 20]),
            new([TestData.Image(20, 20, TestData.Green)], SpatialPrompts.Question(SpatialKind.Trajectory, "move the green ball to the left"), SpatialKind.Trajectory, [26, 26, 16, 26, 6, 26]),
        };
        return new TrainingBatch(actions, spatial);
    }

    [Trait("Category", "Slow")]
    [Fact]
    public void Overfitting_a_few_samples_drives_both_losses_down_tenfold()
    {
        // Kept to seconds of CPU: 32×32 images (16 tokens), two samples of each kind, 8 noise draws per action sample.
        using var policy = TestData.Tiny(seed: 5, PolicyConfig.Tiny with { SpatialLossWeight = 1, ImageSize = 32, ActionRepeats = 8 });
        using var optimizer = policy.CreateOptimizer(vlmLr: 2e-3, expertLr: 3e-3, restLr: 2e-3, weightDecay: 0);
        var full = Batch();
        var batch = new TrainingBatch(full.Actions.Take(2).ToList(), full.Spatial.Take(2).ToList());
        // Losses are compared on the same noise and flow times, drawn from one seed.
        (double Action, double Spatial) Evaluate()
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            random.manual_seed(1234);
            var loss = policy.ComputeLoss(batch);
            return (loss.Action!.item<float>(), loss.Spatial!.item<float>());
        }
        var before = Evaluate();
        random.manual_seed(5);
        for (var step = 0; step < 200; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            policy.ComputeLoss(batch).Total.backward();
            optimizer.step();
        }
        var after = Evaluate();
        Assert.True(before.Action / after.Action >= 10, $"action loss fell only {before.Action / after.Action:F1}× ({before.Action:F3} → {after.Action:F3})");
        Assert.True(before.Spatial / after.Spatial >= 10, $"spatial loss fell only {before.Spatial / after.Spatial:F1}× ({before.Spatial:F3} → {after.Spatial:F3})");

        // The memorised answer comes back out of greedy decoding.
        var point = policy.GenerateSpatial([new Observation([batch.Spatial[0].Images[0]], "pick the red cube")], SpatialKind.Point)[0];
        Assert.InRange(point.Coordinates[0], 16 - 2f, 16 + 2f);
        Assert.InRange(point.Coordinates[1], 46 - 2f, 46 + 2f);
    }

    [Fact]
    public void Vanilla_mode_has_no_spatial_loss_and_no_spatial_prompt()
    {
        using var policy = TestData.Tiny(config: PolicyConfig.Tiny with { Vanilla = true });
        using var scope = NewDisposeScope();
        var loss = policy.ComputeLoss(Batch());
        Assert.Null(loss.Spatial);
        Assert.NotNull(loss.Action);
        Assert.Equal(loss.Action!.item<float>(), loss.Total.item<float>());
        Assert.Throws<ArgumentException>(() => policy.ComputeLoss(new TrainingBatch([], Batch().Spatial)));
    }

    [Fact]
    public void Gradient_decay_scales_the_action_gradient_into_the_vlm_but_not_into_the_expert()
    {
        var actionsOnly = new TrainingBatch(Batch().Actions, []);
        Dictionary<string, Tensor> Gradients(double decay)
        {
            var policy = TestData.Tiny(seed: 9, PolicyConfig.Tiny with { GradientDecay = decay });
            // The expert starts adaLN-zero with a zero output head, which passes no gradient upstream; wake it up.
            random.manual_seed(10);
            using (no_grad())
                foreach (var (name, p) in policy.Model.named_parameters().Where(p => p.name.Contains("odulation") || p.name.Contains("actionOut")))
                    p.normal_(0, 0.05);
            random.manual_seed(9);
            using (var scope = NewDisposeScope()) policy.ComputeLoss(actionsOnly).Total.backward();
            var grads = policy.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
            policy.Dispose();
            return grads;
        }
        var full = Gradients(1.0);
        var half = Gradients(0.5);
        Assert.True(half["lm.norm.weight"].allclose(full["lm.norm.weight"] * 0.5, rtol: 1e-4, atol: 1e-7));
        Assert.True(half["vision.patch.weight"].allclose(full["vision.patch.weight"] * 0.5, rtol: 1e-4, atol: 1e-7));
        Assert.True(half["expert.actionIn.weight"].allclose(full["expert.actionIn.weight"], rtol: 1e-5, atol: 1e-8));
        Assert.True(half["bridge.output.weight"].allclose(full["bridge.output.weight"], rtol: 1e-5, atol: 1e-8));
        Assert.True(full["lm.norm.weight"].abs().sum().item<float>() > 0);
    }

    [Fact]
    public void The_optimizer_has_one_group_per_part_with_its_learning_rate()
    {
        using var policy = TestData.Tiny();
        using var optimizer = policy.CreateOptimizer();
        var rates = optimizer.ParamGroups.Select(g => g.LearningRate).ToArray();
        Assert.Equal(new[] { 1e-5, 1e-4, 5e-5 }, rates);
    }

    /// <summary>A 6×6 white square at a random place on black, and the question for its centre.</summary>
    private static (SpatialSample Sample, int X, int Y) LoneSquare(Random rng)
    {
        var (x, y) = (rng.Next(0, 58), rng.Next(0, 58));
        var rgb = new byte[64 * 64 * 3];
        for (var v = y; v < y + 6; v++)
            for (var u = x; u < x + 6; u++)
                rgb.AsSpan((v * 64 + u) * 3, 3).Fill(255);
        var image = new CameraImage(rgb, 64, 64);
        return (new SpatialSample([image], SpatialPrompts.Question(SpatialKind.Point, "touch the square"), SpatialKind.Point, [x + 3, y + 3]), x + 3, y + 3);
    }

    [Trait("Category", "Slow")]
    [Fact]
    public void With_the_convolutional_stem_the_vlm_learns_to_point_at_an_object_anywhere_in_the_image()
    {
        // The skill spatial grounding rests on, on fresh images, not memorised ones. Measured on the same task with two
        // cameras: the conv stem answered 1.7 px off on average after 1,500 steps, while the linear 16-px patch
        // projection was still guessing (31 px) after 600 and 8-px patches reached 9.8 px only after 2,000.
        using var policy = TestData.Tiny(seed: 1, PolicyConfig.Tiny with { PatchSize = 16, VisionStem = "conv", SpatialLossWeight = 1 });
        using var optimizer = policy.CreateOptimizer(vlmLr: 3e-4, expertLr: 1e-3, restLr: 5e-4);
        var rng = new Random(1);
        random.manual_seed(1);
        for (var step = 0; step < 1500; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            policy.ComputeLoss(new TrainingBatch([], [.. Enumerable.Range(0, 16).Select(_ => LoneSquare(rng).Sample)])).Total.backward();
            optimizer.step();
        }
        var tests = Enumerable.Range(0, 32).Select(_ => LoneSquare(rng)).ToArray();
        var answers = policy.GenerateSpatial([.. tests.Select(t => new Observation(t.Sample.Images, "touch the square", null, TestData.Arm))], SpatialKind.Point);
        var error = tests.Zip(answers, (t, a) => Math.Sqrt(Math.Pow(a.Coordinates[0] - t.X, 2) + Math.Pow(a.Coordinates[1] - t.Y, 2))).Average();
        // A guess that ignores the image is ≈ 25 px off; 6 px is within the square's own size.
        Assert.True(error < 6, $"the answers are {error:F1} px from the square on average");
    }

    [Fact]
    public void A_point_guided_policy_learns_to_act_on_the_guide_when_nothing_else_tells_the_samples_apart()
    {
        // One image and one instruction for every sample: only the guide's target says where the arm should move.
        // Kept cheap: 32×32 images in 16-px patches (4 tokens), 4 noise draws per sample.
        using var policy = TestData.Tiny(seed: 4, PolicyConfig.Tiny with { PointGuidance = true, ImageSize = 32, PatchSize = 16, ActionRepeats = 4 });
        using var optimizer = policy.CreateOptimizer(vlmLr: 0, expertLr: 3e-3, restLr: 1e-3, weightDecay: 0);
        var observation = TestData.Observation(0) with { Images = [TestData.Image(20, 20, TestData.Red)] };
        (float X, float Y)[] targets = [(8, 8), (56, 8), (8, 56), (56, 56), (32, 32), (20, 44)];
        var samples = targets.Select(t =>
        {
            var chunk = ActionChunk.Create(PolicyConfig.Tiny.ChunkLength, 7, t, static (values, t) =>
            {
                for (var s = 0; s < values.Length / 7; s++) (values[s * 7], values[s * 7 + 1]) = (t.X / 32 - 1, t.Y / 32 - 1);
            });
            return new ActionSample(observation, chunk, null, new PointGuide([t.X, t.Y], [32, 10]));
        }).ToList();
        var batch = new TrainingBatch(samples, []);
        random.manual_seed(4);
        for (var step = 0; step < 150; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            policy.ComputeLoss(batch).Total.backward();
            optimizer.step();
        }

        // Within 0.15, under half the closest two targets' spacing (0.375): each chunk is nearest its own guide. Measured: ≤ 0.09.
        var chunks = policy.SampleActions([.. samples.Select(s => s.Observation)], [.. samples.Select((_, i) => (long)i)], guides: [.. samples.Select(s => s.Guide)]);
        for (var i = 0; i < targets.Length; i++)
        {
            var x = Enumerable.Range(0, PolicyConfig.Tiny.ChunkLength).Average(s => chunks[i][s, 0]);
            var y = Enumerable.Range(0, PolicyConfig.Tiny.ChunkLength).Average(s => chunks[i][s, 1]);
            Assert.True(Math.Abs(x - (targets[i].X / 32 - 1)) < 0.15 && Math.Abs(y - (targets[i].Y / 32 - 1)) < 0.15,
                $"guide ({targets[i].X}, {targets[i].Y}): moved ({x:F2}, {y:F2}), expected ({targets[i].X / 32 - 1:F2}, {targets[i].Y / 32 - 1:F2})");
        }
    }
}
