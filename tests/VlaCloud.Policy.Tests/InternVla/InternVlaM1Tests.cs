using TorchSharp;
using VlaCloud.Parity;
using VlaCloud.Policy.InternVla;
using VlaCloud.Policy.InternVla.Qwen;
using VlaCloud.Policy.InternVla.Text;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Tests.InternVla;

public sealed class InternVlaM1Tests
{
    private static InternVlaM1 Build(InternVlaM1Config? config = null)
    {
        lock (typeof(InternVlaM1Tests))
        {
            random.manual_seed(7);
            var model = new InternVlaM1(config ?? TinyInternVlaM1.Config(), TinyInternVlaM1.Tokenizer());
            // Upstream zero-initialises the DiT's output layer; a trained one is not, and only then do the noise
            // prediction, guidance and the gradient into the condition show.
            using (no_grad())
                foreach (var (name, p) in model.named_parameters().Where(p => p.name.Contains("final_layer", StringComparison.Ordinal)))
                    p.normal_(0, 0.2);
            return model;
        }
    }

    private static CameraImage Image(int seed, int side = TinyInternVlaM1.ImageSize)
    {
        var pixels = new byte[side * side * 3];
        for (var i = 0; i < pixels.Length; i++) pixels[i] = (byte)((i * (seed + 3) + seed * 17) % 251);
        return new CameraImage(pixels, side, side);
    }

    [Fact]
    public void The_model_names_its_parameters_as_the_released_state_dict()
    {
        var config = TinyInternVlaM1.Config();
        using var model = Build(config);
        var expected = Qwen25VlCheckpoint.ExpectedTensors(config.Qwen).Select(t => $"qwen_vl_interface.model.{t.Name} [{string.Join(", ", t.Shape)}]")
            .Concat(config.Heads.ExpectedParameters().Select(p => p.ToString())).Order(StringComparer.Ordinal).ToList();
        var actual = model.named_parameters().Select(p => $"{p.name} [{string.Join(", ", p.parameter.shape)}]").Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expected, actual);
        Assert.Contains(actual, n => n.StartsWith("qwen_vl_interface.model.model.language_model.layers.0.", StringComparison.Ordinal));
        Assert.Contains(actual, n => n.StartsWith("dino_encoder.body.blocks.0.", StringComparison.Ordinal));
    }

    [Fact]
    public void Sampling_gives_a_chunk_of_the_configured_length_per_sample_and_depends_on_the_noise()
    {
        using var model = Build();
        model.eval();
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var views = model.ResizeViews([[Image(1), Image(2)], [Image(3, 80), Image(4, 80)]]);
        var prompts = new[] { "pick the red cube", "open the drawer" }.Select(model.ActionPrompt).ToList();
        var condition = model.Condition(views, prompts);
        var q = model.Config.Heads.QFormer;
        Assert.Equal(new long[] { 2, q.NumQueryTokens, q.OutputDim }, condition.shape);
        var noise = randn(2, TinyInternVlaM1.ChunkLength, model.Config.ActionDim);
        var a = model.SampleActions(condition, noise);
        var b = model.SampleActions(condition, noise);
        var c = model.SampleActions(condition, randn(2, TinyInternVlaM1.ChunkLength, model.Config.ActionDim));
        Assert.Equal(new long[] { 2, 16, model.Config.ActionDim }, a.shape);
        Assert.True(a.isfinite().all().item<bool>());
        Assert.Equal(0.0, (a - b).abs().max().item<float>());
        Assert.True((a - c).abs().max().item<float>() > 1e-3);
        // Fewer DDIM steps or no guidance change the result: both are options of the call.
        Assert.True((model.SampleActions(condition, noise, cfgScale: 1.0) - a).abs().max().item<float>() > 1e-6);
        Assert.True((model.SampleActions(condition, noise, ddimSteps: 3) - a).abs().max().item<float>() > 1e-6);
    }

    [Fact]
    public void Each_sample_is_conditioned_on_its_own_images_and_prompt()
    {
        using var model = Build();
        model.eval();
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var views = model.ResizeViews([[Image(1)], [Image(2)]]);
        var both = model.Condition(views, [model.ActionPrompt("pick the cube"), model.ActionPrompt("open the drawer now")]);
        var alone = model.Condition([views[1]], [model.ActionPrompt("open the drawer now")]);
        // Left padding of the shorter prompt must not change the other sample's condition.
        Assert.True((both[1] - alone[0]).abs().max().item<float>() < 1e-4);
        Assert.True((both[0] - both[1]).abs().max().item<float>() > 1e-4);
    }

    [Fact]
    public void The_action_and_vlm_losses_train_the_vlm_and_the_heads()
    {
        using var model = Build();
        model.train();
        using var scope = NewDisposeScope();
        var views = model.ResizeViews([[Image(1)], [Image(2)]]);
        var condition = model.Condition(views, [model.ActionPrompt("pick the cube"), model.ActionPrompt("open the drawer")]);
        var actions = rand(2, TinyInternVlaM1.ChunkLength, model.Config.ActionDim) * 2 - 1;
        var actionLoss = model.ActionLoss(actions, condition);
        var answer = QwenSpatialAnswer.Format([new SpatialItem(SpatialKind.Box, [4, 6, 30, 40], "cube")]);
        var vlmLoss = model.VlmLoss([[Image(5)]], [[ChatMessage.User("Locate the cube.", 1), ChatMessage.Assistant(answer)]]);
        Assert.True(float.IsFinite(actionLoss.item<float>()) && actionLoss.item<float>() > 0);
        Assert.True(float.IsFinite(vlmLoss.item<float>()) && vlmLoss.item<float>() > 0);
        (actionLoss + vlmLoss * model.Config.VlmLossWeight).backward();
        var grads = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad);
        bool Trained(string prefix) => grads.Where(g => g.Key.StartsWith(prefix, StringComparison.Ordinal)).Any(g => g.Value is not null && g.Value.abs().sum().item<float>() > 0);
        Assert.True(Trained("qwen_vl_interface.model.model.language_model."));
        Assert.True(Trained("qwen_vl_interface.model.model.visual."));
        Assert.True(Trained("layer_qformer."));
        Assert.True(Trained("action_model.net."));
        Assert.True(Trained("dino_encoder.body."));
        Assert.True(Trained("dino_pro."));
    }

    [Fact]
    public void Vanilla_mode_uses_the_bare_instruction_and_the_released_prompt_otherwise()
    {
        using var model = Build();
        using var vanilla = Build(TinyInternVlaM1.Config() with { Vanilla = true });
        Assert.Equal("Your task is pick the cube. To identify the key objects for your task. Locate their bounding boxes in [x1,y1,x2,y2] format.",
            model.ActionPrompt("pick the cube"));
        Assert.Equal("pick the cube", vanilla.ActionPrompt("pick the cube"));
    }

    [Fact]
    public void A_tokenizer_whose_vision_tokens_differ_from_the_config_is_refused()
    {
        var config = TinyInternVlaM1.Config();
        var wrong = config with { Qwen = config.Qwen with { ImageTokenId = config.Qwen.ImageTokenId + 1 } };
        var error = Assert.Throws<ArgumentException>(() => new InternVlaM1(wrong, TinyInternVlaM1.Tokenizer()));
        Assert.Contains("<|image_pad|>", error.Message);
    }
}
