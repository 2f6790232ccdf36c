using TorchSharp;
using VlaCloud.Policy.InternVla.Qwen;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Tests.InternVla;

public sealed class QwenModelTests : IDisposable
{
    private readonly Qwen25Vl model = QwenFixture.Load();
    private readonly Checkpoint.SafetensorsFile io = QwenFixture.Io();

    public void Dispose()
    {
        model.Dispose();
        io.Dispose();
    }

    private Qwen25VlConfig Config => model.Config;

    /// <summary>Row <paramref name="row"/> of the fixture batch on its own: padding dropped, only its image's patches.</summary>
    private QwenInputs Alone(int row)
    {
        var (ids, mask, pixels, grid) = (io.Read("input_ids"), io.Read("attention_mask"), io.Read("pixel_values"), io.Read("image_grid_thw"));
        var keep = mask[row].nonzero().squeeze(1);
        // The fixture has one image per row, in row order.
        var patches = grid.prod(1);
        var start = row == 0 ? 0 : patches[..row].sum().item<long>();
        return new QwenInputs(ids[row].index_select(0, keep).unsqueeze(0), null,
            pixels.narrow(0, start, patches[row].item<long>()), grid[row].unsqueeze(0));
    }

    [Fact]
    public void Greedy_decoding_with_the_kv_cache_equals_recomputing_the_whole_sequence_each_step()
    {
        var inputs = QwenFixture.Inputs(io);
        var length = inputs.InputIds.shape[1];
        using var expected = io.Read("generate_greedy_8");
        var steps = (int)(expected.shape[1] - length);
        var cached = model.Generate(inputs, new QwenGenerationOptions { MaxNewTokens = steps });
        var recomputed = model.Generate(inputs, new QwenGenerationOptions { MaxNewTokens = steps, UseCache = false });
        Assert.True(QwenFixture.Same(cached, recomputed));
        Assert.True(QwenFixture.Same(cached, expected));

        // With an EOS id (the second token row 1 generates), a row that ends gets the pad id and the batch stops once all have ended.
        var eos = expected[1, length + 1].item<long>();
        var pad = inputs.InputIds[0, 0].item<long>();
        var options = new QwenGenerationOptions { MaxNewTokens = steps, EosTokenIds = [eos], PadTokenId = pad };
        var withEos = model.Generate(inputs, options);
        Assert.True(QwenFixture.Same(withEos, model.Generate(inputs, options with { UseCache = false })));
        var rows = expected.data<long>().Chunk((int)expected.shape[1]).Select(r => r.ToArray()).ToArray();
        var ends = rows.Select(r => Enumerable.Range((int)length, steps).FirstOrDefault(j => r[j] == eos, -1)).ToArray();
        var width = ends.All(e => e >= 0) ? ends.Max() + 1 : (int)expected.shape[1];
        Assert.Equal(width, withEos.shape[1]);
        for (var b = 0; b < rows.Length; b++)
            for (var j = 0; j < width; j++)
                Assert.Equal(ends[b] >= 0 && j > ends[b] ? pad : rows[b][j], withEos[b, j].item<long>());
    }

    [Fact]
    public void A_prompt_gives_the_same_hidden_states_and_logits_alone_as_in_the_left_padded_batch()
    {
        using var batch = model.Forward(QwenFixture.Inputs(io), new QwenForwardOptions { Logits = QwenLogits.All });
        using var mask = io.Read("attention_mask");
        for (var row = 0; row < mask.shape[0]; row++)
        {
            using var alone = model.Forward(Alone(row), new QwenForwardOptions { Logits = QwenLogits.All });
            var keep = mask[row].nonzero().squeeze(1);
            Assert.True(alone.LastHiddenState[0].allclose(batch.LastHiddenState[row].index_select(0, keep), rtol: 0, atol: 1e-5), $"row {row}: hidden states differ");
            Assert.True(alone.Logits![0].allclose(batch.Logits![row].index_select(0, keep), rtol: 0, atol: 1e-5), $"row {row}: logits differ");
        }
    }

    [Fact]
    public void A_text_only_batch_runs_with_left_padding_like_each_prompt_alone()
    {
        long[][] prompts = [[5, 17, 33], [9, 44, 71, 100, 12]];
        var length = prompts.Max(p => p.Length);
        var pad = Config.Text.VocabSize - 1;
        var ids = tensor(prompts.SelectMany(p => Enumerable.Repeat((long)pad, length - p.Length).Concat(p)).ToArray(), [prompts.Length, length]);
        var mask = tensor(prompts.SelectMany(p => Enumerable.Repeat(0L, length - p.Length).Concat(Enumerable.Repeat(1L, p.Length))).ToArray(), [prompts.Length, length]);
        using var batch = model.Forward(new QwenInputs(ids, mask));
        for (var row = 0; row < prompts.Length; row++)
        {
            using var alone = model.Forward(new QwenInputs(tensor(prompts[row], [1, prompts[row].Length])));
            Assert.True(alone.LastHiddenState[0].allclose(batch.LastHiddenState[row, (length - prompts[row].Length)..], rtol: 0, atol: 1e-5));
        }
        // Text-only positions count the attended tokens; padding takes 1 (transformers' rule).
        var (positions, deltas) = model.RopeIndex(ids, attentionMask: mask);
        Assert.Equal([1L, 1, 0, 1, 2], positions[0, 0].data<long>().ToArray());
        Assert.Equal(3 - length, deltas[0, 0].item<long>());
    }

    [Fact]
    public void Two_images_in_one_prompt_get_upstream_m_rope_positions_and_their_own_embeddings()
    {
        using var grid = io.Read("image_grid_thw");
        using var pixels = io.Read("pixel_values");
        var merge = Config.Vision.SpatialMergeSize;
        var merged = Enumerable.Range(0, 2).Select(i => (H: grid[i, 1].item<long>() / merge, W: grid[i, 2].item<long>() / merge)).ToArray();
        var (start, end, image) = (Config.VisionStartTokenId, Config.VisionEndTokenId, Config.ImageTokenId);
        long[] Image(int i) => [start, .. Enumerable.Repeat(image, (int)(merged[i].H * merged[i].W)), end];
        long[] prompt = [5, 17, .. Image(0), 21, .. Image(1), 23];
        var ids = tensor(prompt, [1, prompt.Length]);

        // Expected as transformers' get_rope_index documents it: text runs advance all axes together; an image's
        // tokens take (offset, offset + row, offset + column) with offset = the next free position; text after an
        // image continues from the largest position + 1.
        var expected = new List<(long T, long H, long W)>();
        long next = 0;
        void Text(int count) { for (var k = 0; k < count; k++, next++) expected.Add((next, next, next)); }
        void Grid(int i)
        {
            for (var y = 0; y < merged[i].H; y++)
                for (var x = 0; x < merged[i].W; x++) expected.Add((next, next + y, next + x));
            next += Math.Max(merged[i].H, merged[i].W);
        }
        Text(3); Grid(0); Text(3); Grid(1); Text(2);
        var (positions, deltas) = model.RopeIndex(ids, grid);
        Assert.Equal(expected.Select(e => e.T), positions[0, 0].data<long>().ToArray());
        Assert.Equal(expected.Select(e => e.H), positions[1, 0].data<long>().ToArray());
        Assert.Equal(expected.Select(e => e.W), positions[2, 0].data<long>().ToArray());
        Assert.Equal(next - prompt.Length, deltas[0, 0].item<long>());

        // Each image's embeddings land in its own tokens, in order.
        using var output = model.Forward(new QwenInputs(ids, null, pixels, grid), new QwenForwardOptions { HiddenStates = [0] });
        using var images = model.EncodeImages(pixels, grid);
        var slots = ids[0].eq(image).nonzero().squeeze(1);
        Assert.True(QwenFixture.Same(output.HiddenStates[0][0].index_select(0, slots), images));
        // Causality: the tokens up to the second image do not see it, so they match the prompt that stops there.
        var prefix = 2 + Image(0).Length + 1; // 5, 17, the first image, 21
        var firstPatches = grid[0].prod().item<long>();
        using var shorter = model.Forward(new QwenInputs(ids[.., ..prefix], null, pixels.narrow(0, 0, firstPatches), grid[..1]));
        Assert.True(shorter.LastHiddenState.allclose(output.LastHiddenState[.., ..prefix], rtol: 0, atol: 1e-5));
    }

    [Fact]
    public void Rope_positions_with_the_attention_mask_skip_padding_and_are_the_fixture_shifted_by_it()
    {
        using var ids = io.Read("input_ids");
        using var mask = io.Read("attention_mask");
        using var grid = io.Read("image_grid_thw");
        // The fixture holds get_rope_index without the mask (the generator passes it into second_per_grid_ts);
        // with the mask each row's tokens move back by its padding and padding takes position 1.
        using var unmasked = io.Read("rope_position_ids");
        using var unmaskedDeltas = io.Read("rope_deltas");
        var (positions, deltas) = model.RopeIndex(ids, grid, mask);
        var padding = (1 - mask).sum(1);                                      // (B)
        var shifted = unmasked - padding.view(1, -1, 1);
        var expected = where(mask.unsqueeze(0).eq(1), shifted, ones_like(shifted));
        Assert.True(QwenFixture.Same(positions, expected));
        Assert.True(QwenFixture.Same(deltas, unmaskedDeltas - padding.unsqueeze(1)));
    }

    [Fact]
    public void Only_the_asked_hidden_states_are_kept_and_the_last_one_is_after_the_final_norm()
    {
        var layers = Config.Text.NumHiddenLayers;
        using var all = model.Forward(QwenFixture.Inputs(io), new QwenForwardOptions { HiddenStates = [.. Enumerable.Range(0, layers + 1)] });
        using var one = model.Forward(QwenFixture.Inputs(io), new QwenForwardOptions { HiddenStates = [layers] });
        Assert.Equal([layers], one.HiddenStates.Keys);
        Assert.True(QwenFixture.Same(one.HiddenStates[layers], one.LastHiddenState));
        Assert.True(QwenFixture.Same(all.HiddenStates[layers], one.HiddenStates[layers]));
        Assert.Null(one.Logits);
        Assert.Throws<ArgumentException>(() => model.Forward(QwenFixture.Inputs(io), new QwenForwardOptions { HiddenStates = [layers + 1] }));
    }

    [Fact]
    public void Inputs_that_do_not_fit_together_are_refused_with_an_argument_error_naming_the_problem()
    {
        var inputs = QwenFixture.Inputs(io);
        var imageSlot = inputs.InputIds.eq(Config.ImageTokenId).nonzero()[0];
        var oneTokenShort = inputs.InputIds.clone();
        oneTokenShort[imageSlot[0], imageSlot[1]] = tensor(5L);
        var oddGrid = inputs.ImageGridThw!.clone();
        oddGrid[0, 1] = oddGrid[0, 1] + 1;
        var badMask = inputs.AttentionMask!.clone();
        badMask[0, 0] = tensor(2L);
        var video = inputs.InputIds.clone();
        video[imageSlot[0], imageSlot[1]] = tensor(Config.VideoTokenId);
        (QwenInputs Inputs, string Named)[] cases =
        [
            (inputs with { InputIds = oneTokenShort }, "image tokens"),
            (inputs with { ImageGridThw = oddGrid }, "image_grid_thw"),
            (inputs with { PixelValues = inputs.PixelValues!.narrow(0, 0, inputs.PixelValues.shape[0] - 1) }, "image_grid_thw"),
            (inputs with { PixelValues = null }, "pixel_values"),
            (inputs with { InputIds = inputs.InputIds + Config.Text.VocabSize }, "vocabulary"),
            (inputs with { AttentionMask = badMask }, "attention_mask"),
            (inputs with { InputIds = video, PixelValues = inputs.PixelValues }, "video"),
        ];
        foreach (var (bad, named) in cases)
            Assert.Contains(named, Assert.Throws<ArgumentException>(() => model.Forward(bad)).Message);
    }

    [Fact]
    public void Gradients_flow_from_the_hidden_states_into_the_vision_tower_and_the_decoder()
    {
        using var output = model.Forward(QwenFixture.Inputs(io), new QwenForwardOptions { HiddenStates = [Config.Text.NumHiddenLayers] });
        output.HiddenStates[Config.Text.NumHiddenLayers].pow(2).mean().backward();
        var grads = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad);
        Assert.True(grads["model.visual.patch_embed.proj.weight"]?.abs().sum().item<float>() > 0);
        Assert.True(grads["model.language_model.layers.0.self_attn.q_proj.weight"]?.abs().sum().item<float>() > 0);
        model.zero_grad();
    }

    [Fact]
    public void Live_tensors_stay_flat_over_repeated_forward_passes_and_generations()
    {
        var inputs = QwenFixture.Inputs(io);
        void Once()
        {
            using (model.Forward(inputs, new QwenForwardOptions { HiddenStates = [0, Config.Text.NumHiddenLayers], Logits = QwenLogits.LastToken })) { }
            model.Generate(inputs, new QwenGenerationOptions { MaxNewTokens = 3 }).Dispose();
        }
        using var noGrad = no_grad();
        Once(); // warm-up
        var statistics = DisposeScopeManager.Statistics.TensorStatistics;
        var before = statistics.ThreadTotalLiveCount;
        for (var i = 0; i < 20; i++) Once();
        Assert.Equal(before, statistics.ThreadTotalLiveCount);
    }
}
