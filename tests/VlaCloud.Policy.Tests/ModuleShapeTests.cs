using VlaCloud.Policy.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Tests;

public sealed class ModuleShapeTests
{
    private static readonly PolicyConfig C = PolicyConfig.Tiny;

    [Fact]
    public void The_vision_encoder_gives_patch_tokens_per_camera_in_the_language_width()
    {
        using var scope = NewDisposeScope();
        using var vision = new VisionEncoder("v", C);
        var y = vision.call(randn([3, 2, 3, C.ImageSize, C.ImageSize]));
        Assert.Equal(new long[] { 3, 2 * C.PatchesPerImage, C.LmWidth }, y.shape);
    }

    [Fact]
    public void The_language_model_keeps_the_sequence_shape_and_its_head_spans_the_vocabulary()
    {
        using var scope = NewDisposeScope();
        using var lm = new LanguageModel("lm", C);
        var x = lm.Embed(randint(0, C.VocabSize, [2, 5]));
        var mask = zeros(2, 1, 5, 5);
        var h = lm.call(x, arange(5).unsqueeze(0).expand(2, 5), mask, null);
        Assert.Equal(new long[] { 2, 5, C.LmWidth }, h.shape);
        Assert.Equal(new long[] { 2, 5, C.VocabSize }, lm.Logits(h).shape);
    }

    [Fact]
    public void The_bridge_turns_latent_query_states_into_conditioning_tokens_of_the_expert_width()
    {
        using var scope = NewDisposeScope();
        using var bridge = new Bridge("b", C);
        var y = bridge.call(randn(2, C.LatentQueries, C.LmWidth), randn(2, 30, C.LmWidth), zeros(2, 1, 1, 30));
        Assert.Equal(new long[] { 2, C.LatentQueries, C.ExpertWidth }, y.shape);
    }

    [Fact]
    public void The_action_expert_predicts_a_velocity_of_the_chunk_shape_with_and_without_state()
    {
        using var scope = NewDisposeScope();
        using var expert = new ActionExpert("e", C);
        var cond = randn(4, C.LatentQueries, C.ExpertWidth);
        var noisy = randn(4, C.ChunkLength, C.MaxActionDim);
        Assert.Equal(noisy.shape, expert.call(noisy, rand(4), randn(4, 2 * C.MaxStateDim), null, cond).shape);
        Assert.Equal(noisy.shape, expert.call(noisy, rand(4), null, null, cond).shape);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void The_expert_s_prepared_sampling_steps_give_its_forward_s_velocity(bool state, bool points)
    {
        var config = C with { UseState = state, PointGuidance = points };
        using var scope = NewDisposeScope();
        using var expert = new ActionExpert("e", config);
        // adaLN-zero starts every block (and the output) at zero; random weights make every path count.
        using (no_grad())
        {
            var generator = new TorchSharp.torch.Generator(5);
            foreach (var p in expert.parameters()) p.normal_(0, 0.2, generator);
        }
        expert.eval();
        using var inference = inference_mode();
        var cond = randn(3, C.LatentQueries, C.ExpertWidth);
        var s = state ? randn(3, 2 * C.MaxStateDim) : null;
        var pointFeatures = points ? randn(3, PolicyConfig.PointGuideFeatures) : null;
        var times = tensor(new[] { 1.0f, 0.55f, 0.1f });
        var prepared = expert.Prepare(times, s, pointFeatures, cond);
        for (var i = 0; i < 3; i++)
        {
            var noisy = randn(3, C.ChunkLength, C.MaxActionDim);
            var expected = expert.call(noisy, times[i].expand(3), s, pointFeatures, cond);
            var actual = expert.Velocity(noisy, i, prepared);
            Assert.True(expected.abs().max().item<float>() > 0.1f, "the velocity is not trivially zero");
            Assert.True(allclose(actual, expected, rtol: 1e-4, atol: 1e-5), $"step {i}: max difference {(actual - expected).abs().max().item<float>()}");
        }
    }

    [Fact]
    public void Point_guidance_adds_one_projection_to_the_expert_exactly_as_estimated_and_nothing_to_unguided_checkpoints()
    {
        var guided = C with { PointGuidance = true };
        using var policy = TestData.Tiny(config: guided);
        Assert.Equal(guided.EstimateParameters().Total, policy.ParameterCount);
        Assert.Equal((PolicyConfig.PointGuideFeatures + 1L) * C.ExpertWidth, guided.EstimateParameters().ActionExpert - C.EstimateParameters().ActionExpert);
        using var unguided = TestData.Tiny();
        var added = policy.NamedParameters().Select(p => p.Name).Except(unguided.NamedParameters().Select(p => p.Name)).ToList();
        Assert.Equal(["expert.pointsIn.weight", "expert.pointsIn.bias"], added.Order().Reverse());

        using var scope = NewDisposeScope();
        var cond = randn(4, C.LatentQueries, C.ExpertWidth);
        var noisy = randn(4, C.ChunkLength, C.MaxActionDim);
        Assert.Equal(noisy.shape, policy.Model.Expert.call(noisy, rand(4), randn(4, 2 * C.MaxStateDim), randn(4, PolicyConfig.PointGuideFeatures), cond).shape);
        Assert.Throws<ArgumentException>(() => policy.Model.Expert.call(noisy, rand(4), null, null, cond));
        // The point token reads System 2's answers, which a vanilla policy is not trained to give.
        Assert.Throws<ArgumentException>(() => (guided with { Vanilla = true }).Validate());
    }

    [Fact]
    public void The_vlm_sequence_holds_images_left_padded_text_and_latent_queries()
    {
        using var policy = TestData.Tiny();
        using var scope = NewDisposeScope();
        var observations = new[] { TestData.Observation(0), TestData.Observation(1) };
        var images = policy.St4Vla.Images(observations.Select(o => o.Images).ToList(), out var cameras);
        Assert.Equal(new long[] { 2, 2, 3, C.ImageSize, C.ImageSize }, images.shape);
        var text = new[] { new[] { 5, 6, 7 }, new[] { 8 } };
        var seq = policy.St4Vla.Sequence(images, [2, 1], text, withQueries: true);
        var total = 2 * C.PatchesPerImage + 3 + C.LatentQueries;
        Assert.Equal(new long[] { 2, total, C.LmWidth }, seq.Embeds.shape);
        Assert.Equal(new long[] { 2, 1, total, total }, seq.Mask.shape);
        Assert.Equal(new long[] { 2, 1, 1, total }, seq.KeyMask.shape);
        Assert.False(seq.Valid[1, C.PatchesPerImage]);                  // sample 1 has one camera
        Assert.False(seq.Valid[1, 2 * C.PatchesPerImage]);              // and one text token, left-padded
        Assert.True(seq.Valid[1, 2 * C.PatchesPerImage + 2]);
        // Positions count valid tokens only, so padding does not shift the text.
        Assert.Equal(C.PatchesPerImage, seq.Positions[1, 2 * C.PatchesPerImage + 2].item<long>());
    }

    [Fact]
    public void The_built_model_has_exactly_the_estimated_parameter_count()
    {
        using var policy = TestData.Tiny();
        Assert.Equal(C.EstimateParameters().Total, policy.ParameterCount);
        var groups = policy.ParameterGroups();
        Assert.Equal(policy.ParameterCount, groups.Vlm.Concat(groups.ActionExpert).Concat(groups.Rest).Sum(p => p.numel()));
    }

    [Fact]
    public void A_convolutional_stem_keeps_the_token_grid_and_the_parameter_estimate_exact()
    {
        var config = C with { VisionStem = "conv" };
        using var policy = TestData.Tiny(config: config);
        Assert.Equal(config.EstimateParameters().Total, policy.ParameterCount);
        Assert.NotEqual(C.EstimateParameters().Vision, config.EstimateParameters().Vision);
        using var images = zeros([2, 2, 3, C.ImageSize, C.ImageSize]);
        using var tokens = policy.Model.Vision.call(images);
        Assert.Equal(new long[] { 2, 2 * C.PatchesPerImage, C.LmWidth }, tokens.shape);
        Assert.Throws<ArgumentException>(() => (C with { VisionStem = "conv", PatchSize = 2, ImageSize = 64 }).Validate());
        Assert.Throws<ArgumentException>(() => (C with { VisionStem = "pixels" }).Validate());
    }

    [Fact]
    public void The_base_config_is_paper_scale()
    {
        var counts = PolicyConfig.Base.EstimateParameters();
        Assert.InRange(counts.Total, 3_000_000_000, 5_000_000_000);
        Assert.InRange(counts.ActionExpert, 80_000_000, 250_000_000);
        Assert.Equal(64, PolicyConfig.Base.PatchesPerImage);
    }
}
