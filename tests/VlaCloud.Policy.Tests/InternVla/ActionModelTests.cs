using VlaCloud.Policy.InternVla.Heads;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Tests.InternVla;

public sealed class ActionModelTests
{
    private static (Tensor Condition, Tensor Noise) FixtureInputs()
    {
        using var io = Checkpoint.SafetensorsFile.Open(GoldenFixtures.File("dit_tiny.io.safetensors"));
        return (io.Read("condition"), io.Read("ddim.initial_noise"));
    }

    public static TheoryData<double, int> PreparedCases() => new() { { 1.5, 10 }, { 1.0, 10 }, { 3.0, 4 }, { 1.5, 1 } };

    /// <summary>
    /// The prepared DDIM (embedders once per request, one state under guidance, the final layer on the action tokens)
    /// gives the same bits as the per-step full forward it replaced, with and without guidance, on a batch and one sample.
    /// </summary>
    [Theory]
    [MemberData(nameof(PreparedCases))]
    public void Prepared_ddim_sampling_is_bit_identical_to_the_per_step_forward(double cfgScale, int steps)
    {
        using var model = TinyHeads.LoadedActionModel();
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var (condition, noise) = FixtureInputs();
        foreach (var rows in new[] { condition.shape[0], 1L })
        {
            var (c, n) = (condition[..(int)rows], noise[..(int)rows]);
            using var prepared = model.StartSampling(c, n, cfgScale, steps);
            using var unprepared = model.StartSamplingUnprepared(c, n, cfgScale, steps);
            while (!prepared.Done)
            {
                prepared.Step();
                unprepared.Step();
            }
            var (a, b) = (prepared.Result(), unprepared.Result());
            Assert.Equal(b.shape, a.shape);
            Assert.True(a.eq(b).all().item<bool>(), $"rows {rows}: max |Δ| {(a - b).abs().max().item<float>()}");
        }
    }

    [Fact]
    public void Classifier_free_guidance_at_scale_1_equals_the_conditional_sample()
    {
        using var model = TinyHeads.LoadedActionModel();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (condition, noise) = FixtureInputs();
        var b = (int)condition.shape[0];
        var conditional = model.SampleActions(condition, noise, cfgScale: 1.0);
        // The guided path itself (batch [condition; uncondition], noise duplicated, first half kept) at scale 1.
        var z = cat([condition, model.Net.Uncondition.unsqueeze(0).expand(b, -1, -1)], 0);
        var guided = model.Ddim(model.Config.DdimSteps).DdimSample((x, t) => model.Net.ForwardWithCfg(x, t, z, 1.0), cat([noise, noise], 0))[..b];
        Assert.True((guided - conditional).abs().max().item<float>() < 1e-5f);
        // Not a vacuous match: the unconditional sample and the default guidance (1.5) both differ from it.
        var unconditional = model.Ddim(model.Config.DdimSteps).DdimSample((x, t) => model.Net.call(x, t, z[b..]), noise);
        Assert.True((unconditional - conditional).abs().max().item<float>() > 1e-2f);
        Assert.True((model.SampleActions(condition, noise) - conditional).abs().max().item<float>() > 1e-2f);
    }

    public static TheoryData<double> DropoutProbabilities() => [0.1, 0.3];

    [Theory]
    [MemberData(nameof(DropoutProbabilities))]
    public void Condition_dropout_replaces_whole_conditions_with_uncondition_at_the_configured_probability_in_training_mode_only(double probability)
    {
        var config = TinyHeads.Dit with { ClassDropoutProb = probability };
        using var model = TinyHeads.LoadedActionModel(config);
        var embedder = model.Net.ConditionEmbedder;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        const int samples = 4000;
        manual_seed(11);
        var conditions = randn(samples, config.ConditionTokens, config.TokenSize);
        var kept = embedder.Linear.call(conditions);                                         // (N, Q, D)
        var dropped = embedder.Linear.call(model.Net.Uncondition.unsqueeze(0));              // (1, Q, D)

        int Dropped(Tensor output)
        {
            var isDropped = (output - dropped).abs().amax([1, 2]) < 1e-6;                    // (N)
            var isKept = (output - kept).abs().amax([1, 2]) < 1e-6;                          // (N)
            // Every sample's condition is replaced as a whole or not at all.
            Assert.True(isDropped.logical_xor(isKept).all().item<bool>(), "a sample was partly replaced");
            return (int)isDropped.sum().item<long>();
        }

        model.train();
        var count = Dropped(embedder.call(conditions));
        var sd = Math.Sqrt(samples * probability * (1 - probability));
        Assert.InRange(count, samples * probability - 4 * sd, samples * probability + 4 * sd);
        model.eval();
        Assert.Equal(0, Dropped(embedder.call(conditions)));
    }

    [Fact]
    public void The_training_loss_draws_noise_and_timesteps_for_every_repeat_and_is_the_mean_squared_noise_error()
    {
        var config = TinyHeads.Dit;
        using var model = TinyHeads.LoadedActionModel();
        using var scope = NewDisposeScope();
        manual_seed(5);
        var actions = randn(3, config.ChunkLength + 2, config.ActionDim).tanh();
        var condition = randn(3, config.ConditionTokens, config.TokenSize);
        var step = model.ComputeLoss(actions, condition);
        var n = 3 * config.RepeatedDiffusionSteps;
        Assert.Equal(new long[] { n, config.ChunkLength, config.ActionDim }, step.Noise.shape);
        Assert.Equal(new long[] { n }, step.Timesteps.shape);
        Assert.InRange(step.Timesteps.min().item<long>(), 0L, config.DiffusionSteps - 1L);
        Assert.InRange(step.Timesteps.max().item<long>(), 0L, config.DiffusionSteps - 1L);
        // Copies follow the whole batch (repeat, not repeat_interleave), each with its own noise; the target is the last chunk.
        var target = actions[.., (config.ChunkLength + 2 - config.ChunkLength)..];
        using (no_grad())
        {
            var again = model.Diffusion.QSample(target.repeat(config.RepeatedDiffusionSteps, 1, 1), step.Timesteps, step.Noise);
            Assert.Equal(0f, (again - step.NoisyActions).abs().max().item<float>());
        }
        Assert.True((step.Noise[..3] - step.Noise[3..6]).abs().max().item<float>() > 0);
        Assert.Equal(0f, ((step.NoisePrediction - step.Noise).pow(2).mean() - step.Loss).abs().item<float>(), 1e-6f);
        step.Loss.backward();
        // Everything but the unused history embedder and, in eval mode, the uncondition learns from the loss.
        foreach (var (name, parameter) in model.named_parameters())
            Assert.True((parameter.grad is null) == (name.Contains("history_embedder") || name.Contains("uncondition")), name);
    }

    [Fact]
    public void Sampling_draws_its_own_noise_with_the_configured_chunk_shape_and_repeats_under_a_seed()
    {
        var config = TinyHeads.Dit;
        using var model = TinyHeads.LoadedActionModel();
        using var scope = NewDisposeScope();
        var (condition, _) = FixtureInputs();
        manual_seed(7);
        var first = model.SampleActions(condition, ddimSteps: 5);
        manual_seed(7);
        var second = model.SampleActions(condition, ddimSteps: 5);
        Assert.Equal(new long[] { condition.shape[0], config.ChunkLength, config.ActionDim }, first.shape);
        Assert.Equal(0f, (first - second).abs().max().item<float>());
        Assert.Equal([0L, 20, 40, 60, 80], model.Ddim(5).TimestepMap);
        Assert.False(first.requires_grad);
    }

    [Theory]
    [InlineData(100, "ddim10", new[] { 0, 10, 20, 30, 40, 50, 60, 70, 80, 90 })]
    [InlineData(100, "ddim1", new[] { 50 })]
    [InlineData(10, "3,2", new[] { 0, 2, 4, 5, 9 })]
    public void Timesteps_are_respaced_as_upstream_space_timesteps(int steps, string spacing, int[] expected)
    {
        Assert.Equal(expected, GaussianDiffusion.SpaceTimesteps(steps, spacing));
    }
}
