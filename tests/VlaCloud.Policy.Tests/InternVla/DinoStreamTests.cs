using VlaCloud.Parity;
using VlaCloud.Policy.Checkpoint;
using VlaCloud.Policy.InternVla.Heads;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Tests.InternVla;

public sealed class DinoStreamTests
{
    private static DinoBackbone Loaded(DinoConfig config)
    {
        var dino = new DinoBackbone("dino_encoder", config);
        using (var weights = SafetensorsFile.Open(GoldenFixtures.File("dino_tiny.safetensors"))) ModuleWeights.Load(dino, weights);
        dino.eval();
        return dino;
    }

    [Fact]
    public void Positions_are_resized_by_the_offset_scale_factor_and_resizing_to_the_size_instead_misses_the_fixture()
    {
        using var io = SafetensorsFile.Open(GoldenFixtures.File("dino_tiny.io.safetensors"));
        using var withOffset = Loaded(TinyHeads.Dino);
        using var toSize = Loaded(TinyHeads.Dino with { InterpolateOffset = 0 });
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var input = io.Read("prepared_input");
        var expected = io.Read("x_norm_patchtokens");
        var good = ParityResult.Compare("offset", withOffset.call(input), expected);
        var sized = ParityResult.Compare("size", toSize.call(input), expected);
        Assert.True(good.Passed, $"{good.MaxAbsDiff}");
        // libtorch maps output to input pixels with the given scale factor, (16 + 0.1) / 7, not 16 / 7.
        Assert.True(sized.MaxAbsDiff > 10 * ParityResult.DefaultTolerance, $"{sized.MaxAbsDiff}");
    }

    [Fact]
    public void An_input_at_the_learned_grid_uses_the_positions_as_they_are()
    {
        var config = TinyHeads.Dino;
        using var dino = new DinoVisionTransformer("body", config);
        using var offset = new DinoVisionTransformer("body", config with { InterpolateOffset = 0 });
        offset.load_state_dict(dino.state_dict());
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var x = randn(2, 3, config.ImageSize, config.ImageSize);
        // Resizing 7×7 by the offset scale (7 + 0.1) / 7 would still give 7×7 but shifted positions, unlike resizing to
        // the size; upstream skips the resize at the learned grid, so both settings give the same tokens.
        Assert.Equal(0.0, (dino.call(x) - offset.call(x)).abs().max().item<float>());
        Assert.Equal(new long[] { 2, config.PositionGrid * config.PositionGrid, config.EmbedDim }, dino.call(x).shape);
    }

    [Fact]
    public void The_stream_gives_each_sample_its_views_patch_tokens_in_a_row_projected_to_the_vlm_width()
    {
        var config = TinyHeads.Config;
        using var heads = new InternVlaHeads(config);
        heads.eval();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var side = 2 * config.Dino.PatchSize;
        var views = randn([2, 3, 3, side, side]);                               // (B, V, 3, H, W)
        var tokens = heads.DinoTokens(views);
        var perView = (side / config.Dino.PatchSize) * (side / config.Dino.PatchSize); // patches per view
        Assert.Equal(new long[] { 2, 3 * perView, config.VlmHiddenSize }, tokens.shape);
        // Sample 1's second view alone gives the second block of sample 1's tokens.
        var single = heads.DinoTokens(views[1..2, 1..2]);
        Assert.True((tokens[1..2, perView..(2 * perView)] - single).abs().max().item<float>() < 1e-5f);
    }

    [Fact]
    public void An_input_that_is_not_a_multiple_of_the_patch_is_refused()
    {
        using var dino = new DinoVisionTransformer("body", TinyHeads.Dino);
        using var x = zeros(1, 3, TinyHeads.Dino.PatchSize + 1, TinyHeads.Dino.PatchSize);
        Assert.Throws<ArgumentException>(() => dino.call(x));
    }
}
