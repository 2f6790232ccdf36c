using VlaCloud.Policy.Checkpoint;
using VlaCloud.Policy.InternVla.Qwen;
using static TorchSharp.torch;

namespace VlaCloud.Parity;

/// <summary>
/// Qwen2.5-VL (<c>qwen25vl_tiny.*</c>) against transformers: M-RoPE positions and deltas, the vision window order,
/// the vision tower (windowed as configured, and with every block full-attention), every hidden state, the logits, and
/// the greedy generation. Weights go through the hub loader; every size comes from the fixture's config.
/// </summary>
public sealed class Qwen25VlParity : IParityCheck
{
    private const string Config = "qwen25vl_tiny.config.json";
    private const string Weights = "qwen25vl_tiny.safetensors";
    private const string Io = "qwen25vl_tiny.io.safetensors";

    /// <inheritdoc />
    public string Name => "qwen25vl";

    /// <inheritdoc />
    public bool AppliesTo(string folder) => new[] { Config, Weights, Io }.All(f => File.Exists(Path.Combine(folder, f)));

    /// <inheritdoc />
    public IEnumerable<ParityResult> Run(string folder)
    {
        var results = new List<ParityResult>();
        using var scope = NewDisposeScope();
        using var io = ParityChecks.Open(folder, Io);
        var config = Qwen25VlConfig.Read(Path.Combine(folder, Config));
        using var model = Qwen25VlCheckpoint.Load(config, [Path.Combine(folder, Weights)], CPU, float32);
        var (ids, mask, pixels, grid) = (io.Read("input_ids"), io.Read("attention_mask"), io.Read("pixel_values"), io.Read("image_grid_thw"));
        using var inference = inference_mode();

        // The generator calls get_rope_index(input_ids, grid, None, attn): positionally, attn lands in
        // second_per_grid_ts and the mask is None, so the fixture holds the unpadded rule (padding counted as text).
        // The forward pass below passes the mask, as transformers' forward does; hidden states and logits check that path.
        var (positions, deltas) = model.RopeIndex(ids, grid, attentionMask: null);
        results.Add(Exact("rope_position_ids", positions, io.Read("rope_position_ids")));
        results.Add(Exact("rope_deltas", deltas, io.Read("rope_deltas")));

        var grids = ImageGrid.Read(grid, pixels.shape[0], config.Vision);
        var (windowIndex, cuWindows) = VisionLayout.WindowIndex(grids, config.Vision);
        results.Add(ParityResult.CompareExact("vision_window_index", windowIndex, io.Read("vision_window_index").data<long>().ToArray()));
        results.Add(ParityResult.CompareExact("vision_cu_window_seqlens", cuWindows, io.Read("vision_cu_window_seqlens").data<long>().ToArray()));

        results.Add(ParityResult.Compare("vision_embeds", model.EncodeImages(pixels, grid), io.Read("vision_embeds")));
        var allFull = config with { Vision = config.Vision with { FullAttentionBlockIndexes = [.. Enumerable.Range(0, config.Vision.Depth)] } };
        using (var full = Qwen25VlCheckpoint.Load(allFull, [Path.Combine(folder, Weights)], CPU, float32))
            results.Add(ParityResult.Compare("vision_embeds_all_full_attention", full.EncodeImages(pixels, grid), io.Read("vision_embeds_all_full_attention")));

        var layers = config.Text.NumHiddenLayers;
        using var output = model.Forward(new QwenInputs(ids, mask, pixels, grid),
            new QwenForwardOptions { HiddenStates = [.. Enumerable.Range(0, layers + 1)], Logits = QwenLogits.All });
        for (var i = 0; i <= layers; i++)
            results.Add(ParityResult.Compare($"hidden_states_{i}", output.HiddenStates[i], io.Read($"hidden_states.{i}")));
        results.Add(ParityResult.Compare("last_hidden_state", output.LastHiddenState, io.Read("last_hidden_state")));
        results.Add(ParityResult.Compare("logits", output.Logits!, io.Read("logits")));

        // generate(max_new_tokens, do_sample=False, eos_token_id=None, use_cache=True): no row ends early.
        var expected = io.Read("generate_greedy_8");
        var generated = model.Generate(new QwenInputs(ids, mask, pixels, grid),
            new QwenGenerationOptions { MaxNewTokens = (int)(expected.shape[1] - ids.shape[1]) });
        results.Add(Exact("generate_greedy_8", generated, expected));
        return results;
    }

    private static ParityResult Exact(string output, Tensor actual, Tensor expected) =>
        actual.shape.SequenceEqual(expected.shape)
            ? ParityResult.CompareExact(output, actual.to(int64).data<long>().ToArray(), expected.to(int64).data<long>().ToArray())
            : new ParityResult(output, 0, 0, 1, $"shape [{string.Join(", ", actual.shape)}] but the fixture has [{string.Join(", ", expected.shape)}]");
}
