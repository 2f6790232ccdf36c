using VlaCloud.Policy.Checkpoint;
using VlaCloud.Policy.InternVla.Heads;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Tests.InternVla;

public sealed class QFormerBridgeTests
{
    private const long Batch = 2, VlmTokens = 5, DinoTokenCount = 4;

    /// <summary>The VLM's hidden states (embeddings + one per layer, enough for the Q-Former's range) and DINO tokens, from a seed.</summary>
    private static (List<Tensor> States, Tensor Dino) Inputs(InternVlaHeadsConfig config, long seed)
    {
        var generator = new TorchSharp.torch.Generator((ulong)seed);
        var states = Enumerable.Range(0, config.QFormer.EndLayer + 1)
            .Select(_ => randn([Batch, VlmTokens, config.VlmHiddenSize], generator: generator).requires_grad_()).ToList();
        return (states, randn([Batch, DinoTokenCount, config.VlmHiddenSize], generator: generator).requires_grad_());
    }

    private static (Tensor Output, List<Tensor?> StateGrads, Tensor DinoGrad) Backward(InternVlaHeads heads, long seed)
    {
        var (states, dino) = Inputs(heads.Config, seed);
        var output = heads.Condition(states, dino);                                        // (B, Q, D)
        using var weights = randn(output.shape, generator: new TorchSharp.torch.Generator(99));
        (output * weights).sum().backward();
        return (output.detach(), [.. states.Select(s => s.grad)], dino.grad!);
    }

    [Fact]
    public void Gradient_decay_multiplies_the_gradient_into_the_vlm_states_by_grad_scale_and_leaves_the_dino_tokens_alone()
    {
        var config = TinyHeads.Config;
        Assert.False(config.QFormer.GradientDecay);
        using var plain = new InternVlaHeads(config);
        using var decayed = new InternVlaHeads(config with { QFormer = config.QFormer with { GradientDecay = true } });
        decayed.load_state_dict(plain.state_dict());
        plain.eval();
        decayed.eval();
        using var scope = NewDisposeScope();
        var a = Backward(plain, seed: 3);
        var b = Backward(decayed, seed: 3);
        var scale = config.QFormer.GradScale;
        Assert.NotEqual(1.0, scale);
        Assert.Equal(0.0, (a.Output - b.Output).abs().max().item<float>());
        for (var i = 0; i < a.StateGrads.Count; i++)
        {
            var used = i >= config.QFormer.StartLayer && i < config.QFormer.EndLayer;
            if (!used)
            {
                Assert.Null(a.StateGrads[i]);
                Assert.Null(b.StateGrads[i]);
                continue;
            }
            Assert.True(a.StateGrads[i]!.abs().max().item<float>() > 0, $"state {i} gets a gradient");
            Assert.True((b.StateGrads[i]! - scale * a.StateGrads[i]!).abs().max().item<float>() <= 1e-7f, $"state {i} is scaled by {scale}");
        }
        Assert.Equal(0.0, (a.DinoGrad - b.DinoGrad).abs().max().item<float>());
    }

    [Fact]
    public void The_condition_reads_only_the_configured_vlm_layers()
    {
        var config = TinyHeads.Config;
        using var heads = new InternVlaHeads(config);
        heads.eval();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (states, dino) = Inputs(config, seed: 4);
        var reference = heads.Condition(states, dino);
        Assert.Equal(new long[] { Batch, config.QFormer.NumQueryTokens, config.QFormer.OutputDim }, reference.shape);
        for (var i = 0; i < states.Count; i++)
        {
            var changed = states.ToList();
            changed[i] = states[i] + 1;
            var difference = (heads.Condition(changed, dino) - reference).abs().max().item<float>();
            if (i >= config.QFormer.StartLayer && i < config.QFormer.EndLayer) Assert.True(difference > 1e-4f, $"state {i} is read");
            else Assert.Equal(0f, difference);
        }
        Assert.Throws<ArgumentException>(() => heads.Condition(states.Take(config.QFormer.StartLayer).ToList(), dino));
    }

    [Fact]
    public void A_masked_state_is_ignored_as_if_it_were_not_in_the_sequence()
    {
        var config = TinyHeads.QFormer;
        using var qformer = new LayerwiseQFormer("layer_qformer", config);
        using (var weights = SafetensorsFile.Open(GoldenFixtures.File("qformer_tiny.safetensors"))) ModuleWeights.Load(qformer, weights);
        qformer.eval();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        const int length = 9, hidden = 3;
        var states = Enumerable.Range(0, config.Layers).Select(_ => randn(2, length, config.InputDim)).ToList();
        var keepValues = new bool[2, length];
        for (var j = 0; j < length; j++) (keepValues[0, j], keepValues[1, j]) = (true, j >= hidden);
        var keep = tensor(keepValues);
        var masked = qformer.call(states, keep);
        var full0 = qformer.call(states.Select(s => s[..1]).ToList());
        var shortened1 = qformer.call(states.Select(s => s[1.., hidden..]).ToList());
        Assert.True((masked[..1] - full0).abs().max().item<float>() < 1e-5f);
        Assert.True((masked[1..] - shortened1).abs().max().item<float>() < 1e-5f);
        Assert.True((masked[1..] - qformer.call(states.Select(s => s[1..]).ToList())).abs().max().item<float>() > 1e-3f, "the mask changes the output");
    }

    [Fact]
    public void Dropout_acts_in_training_mode_only_and_the_wrong_number_of_layers_is_refused()
    {
        var config = TinyHeads.QFormer;
        using var qformer = new LayerwiseQFormer("layer_qformer", config);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var states = Enumerable.Range(0, config.Layers).Select(_ => randn(2, 6, config.InputDim)).ToList();
        qformer.train();
        Assert.True((qformer.call(states) - qformer.call(states)).abs().max().item<float>() > 0);
        qformer.eval();
        Assert.Equal(0f, (qformer.call(states) - qformer.call(states)).abs().max().item<float>());
        Assert.Throws<ArgumentException>(() => qformer.call(states.Append(states[0]).ToList()));
    }
}
