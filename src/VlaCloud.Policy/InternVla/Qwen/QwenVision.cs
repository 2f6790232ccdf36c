using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using VlaCloud.Policy.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy.InternVla.Qwen;

/// <summary>One image's patch grid: frames (after temporal patching), rows and columns of 14-px patches.</summary>
internal readonly record struct ImageGrid(long T, long H, long W)
{
    /// <summary>Patches of the image (rows of <c>pixel_values</c>).</summary>
    public long Patches => T * H * W;

    /// <summary>
    /// Reads <c>image_grid_thw</c> (N, 3) and checks it before anything is sized from it: positive sides divisible by
    /// the merge size, and exactly <paramref name="pixelRows"/> patches (the rows of <c>pixel_values</c>, or what
    /// <paramref name="counted"/> says they were counted from).
    /// </summary>
    public static ImageGrid[] Read(Tensor imageGridThw, long pixelRows, QwenVisionConfig config, string counted = "the rows of pixel_values")
    {
        if (imageGridThw.dim() != 2 || imageGridThw.shape[1] != 3 || imageGridThw.dtype is not (ScalarType.Int64 or ScalarType.Int32))
            throw new ArgumentException($"image_grid_thw must be an integer (images, 3) tensor, not {imageGridThw.dtype} [{string.Join(", ", imageGridThw.shape)}]");
        var values = imageGridThw.cpu().to(int64).data<long>().ToArray();
        var grids = new ImageGrid[values.Length / 3];
        long remaining = pixelRows;
        for (var i = 0; i < grids.Length; i++)
        {
            var grid = new ImageGrid(values[3 * i], values[3 * i + 1], values[3 * i + 2]);
            if (grid.T < 1 || grid.H < 1 || grid.W < 1 || grid.H % config.SpatialMergeSize != 0 || grid.W % config.SpatialMergeSize != 0)
                throw new ArgumentException($"image_grid_thw row {i} is [{grid.T}, {grid.H}, {grid.W}]: sides must be positive and rows/columns divisible by the merge size {config.SpatialMergeSize}");
            // Divisions, not products: a hostile grid must not overflow its way past the row count.
            if (grid.T > remaining || grid.H > remaining / grid.T || grid.W > remaining / (grid.T * grid.H))
                throw new ArgumentException($"image_grid_thw describes more than the {pixelRows} patches of {counted}");
            remaining -= grid.Patches;
            grids[i] = grid;
        }
        if (remaining != 0)
            throw new ArgumentException($"image_grid_thw describes {pixelRows - remaining} patches, not the {pixelRows} of {counted}");
        return grids;
    }
}

/// <summary>
/// The index arithmetic of the vision tower: each patch's row/column, the window order (transformers'
/// <c>get_window_index</c>) and the attention segments. Patches arrive grouped by merge unit (2×2 patches that become
/// one LM token, row-major inside), and windows are squares of merged tokens, so reordering moves whole merge units.
/// </summary>
internal static class VisionLayout
{
    /// <summary>Row and column of every patch, in <c>pixel_values</c> order (merge units row-major, then inside).</summary>
    public static (long[] Rows, long[] Cols) PatchPositions(IReadOnlyList<ImageGrid> grids, int merge)
    {
        var count = grids.Sum(g => g.Patches);
        var (rows, cols) = (new long[count], new long[count]);
        var n = 0;
        foreach (var g in grids)
            for (var t = 0; t < g.T; t++)
                for (var by = 0; by < g.H / merge; by++)
                    for (var bx = 0; bx < g.W / merge; bx++)
                        for (var iy = 0; iy < merge; iy++)
                            for (var ix = 0; ix < merge; ix++)
                            {
                                rows[n] = by * merge + iy;
                                cols[n++] = bx * merge + ix;
                            }
        return (rows, cols);
    }

    /// <summary>
    /// Merge units in window order, and the cumulative patch counts at each window's end as transformers returns them:
    /// windows are padded to whole squares, so empty windows repeat the previous count.
    /// </summary>
    public static (long[] WindowIndex, long[] CuWindowSeqlens) WindowIndex(IReadOnlyList<ImageGrid> grids, QwenVisionConfig config)
    {
        var (merge, side, unit) = (config.SpatialMergeSize, config.WindowMergedTokens, config.MergeUnit);
        var index = new List<long>();
        var cumulative = new List<long> { 0 };
        long offset = 0;
        foreach (var g in grids)
        {
            var (h, w) = (g.H / merge, g.W / merge);
            // transformers pads by a whole window when the side is already a multiple (an empty window row/column).
            var (windowsH, windowsW) = ((h + side - h % side) / side, (w + side - w % side) / side);
            for (var t = 0; t < g.T; t++)
                for (var wy = 0; wy < windowsH; wy++)
                    for (var wx = 0; wx < windowsW; wx++)
                    {
                        long inWindow = 0;
                        for (var y = wy * side; y < Math.Min((wy + 1) * side, h); y++)
                            for (var x = wx * side; x < Math.Min((wx + 1) * side, w); x++)
                            {
                                index.Add(offset + (t * h + y) * w + x);
                                inWindow++;
                            }
                        cumulative.Add(cumulative[^1] + inWindow * unit);
                    }
            offset += g.T * h * w;
        }
        return ([.. index], [.. cumulative]);
    }

    /// <summary>Cumulative patch counts at each frame's end: full-attention blocks attend within one frame of one image.</summary>
    public static long[] FrameSeqlens(IReadOnlyList<ImageGrid> grids)
    {
        var cumulative = new List<long> { 0 };
        foreach (var g in grids)
            for (var t = 0; t < g.T; t++) cumulative.Add(cumulative[^1] + g.H * g.W);
        return [.. cumulative];
    }
}

/// <summary>
/// Contiguous runs of attention segments (from cumulative lengths; empty segments dropped). Consecutive segments of
/// one length form a run that is attended as a batch, which is what makes window attention cheap: attention never
/// crosses a segment, exactly as transformers' block-diagonal mask (whose off-block weights are exactly zero).
/// </summary>
internal sealed class AttentionSegments
{
    public AttentionSegments(IReadOnlyList<long> cumulative)
    {
        var runs = new List<(long Start, long Length, long Count)>();
        for (var i = 1; i < cumulative.Count; i++)
        {
            var length = cumulative[i] - cumulative[i - 1];
            if (length == 0) continue;
            if (runs.Count > 0 && runs[^1].Length == length && runs[^1].Start + runs[^1].Length * runs[^1].Count == cumulative[i - 1])
                runs[^1] = runs[^1] with { Count = runs[^1].Count + 1 };
            else
                runs.Add((cumulative[i - 1], length, 1));
        }
        Runs = runs;
    }

    /// <summary>(first patch, segment length, segments in the run).</summary>
    public IReadOnlyList<(long Start, long Length, long Count)> Runs { get; }
}

/// <summary>Conv3d patch embedding without bias: one (C, T, P, P) patch per row of <c>pixel_values</c>.</summary>
internal sealed class VisionPatchEmbed : nn.Module<Tensor, Tensor>
{
    private readonly Conv3d proj;

    public VisionPatchEmbed(string name, QwenVisionConfig c, Device? device, ScalarType? dtype) : base(name)
    {
        var kernel = ((long)c.TemporalPatchSize, (long)c.PatchSize, (long)c.PatchSize);
        proj = nn.Conv3d(c.InChannels, c.HiddenSize, kernel, stride: kernel, bias: false, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <param name="patches">(N, C·T·P·P) patches.</param>
    /// <returns>(N, D).</returns>
    public override Tensor forward(Tensor patches)
    {
        // A convolution whose stride is its kernel, over inputs exactly one kernel large, is one dot product per
        // output channel: the same sums as upstream's Conv3d, as one matrix product.
        var weight = proj.weight!;
        return nn.functional.linear(patches.to(weight.dtype), weight.flatten(1));
    }
}

/// <summary>Vision self-attention: fused qkv with bias, 2-D rotary in float32, attention inside each segment.</summary>
internal sealed class VisionAttention : nn.Module<Tensor, Tensor, Tensor, AttentionSegments, Tensor>
{
    private readonly Linear qkv, proj;
    private readonly long heads;

    public VisionAttention(string name, QwenVisionConfig c, Device? device, ScalarType? dtype) : base(name)
    {
        qkv = nn.Linear(c.HiddenSize, 3L * c.HiddenSize, hasBias: true, device: device, dtype: dtype);
        proj = nn.Linear(c.HiddenSize, c.HiddenSize, hasBias: true, device: device, dtype: dtype);
        heads = c.NumHeads;
        RegisterComponents();
    }

    /// <param name="x">(S, D) patches in window order.</param>
    /// <param name="cos">(S, 1, hd) float32 rotary table.</param>
    /// <param name="sin">(S, 1, hd) float32 rotary table.</param>
    /// <param name="segments">which patches attend to each other.</param>
    /// <returns>(S, D).</returns>
    public override Tensor forward(Tensor x, Tensor cos, Tensor sin, AttentionSegments segments)
    {
        using var scope = NewDisposeScope();
        var (s, d) = (x.shape[0], x.shape[1]);
        var parts = qkv.call(x).view(s, 3, heads, d / heads).permute(1, 0, 2, 3); // (3, S, h, hd)
        // transformers rotates the vision queries and keys in float32 whatever the model's dtype.
        var q = Rotary.Apply(parts[0].to(float32), cos, sin).to(x.dtype);
        var k = Rotary.Apply(parts[1].to(float32), cos, sin).to(x.dtype);
        var v = parts[2];
        var outputs = new List<Tensor>(segments.Runs.Count);
        foreach (var (start, length, count) in segments.Runs)
        {
            Tensor Batch(Tensor t) => t.narrow(0, start, length * count).view(count, length, heads, d / heads).transpose(1, 2); // (n, h, len, hd)
            var y = EagerAttention.Attend(Batch(q), Batch(k), Batch(v), null); // (n, h, len, hd)
            outputs.Add(y.transpose(1, 2).reshape(length * count, d));
        }
        return proj.call(cat(outputs, 0)).MoveToOuterDisposeScope(); // (S, D)
    }
}

/// <summary>Pre-norm vision block: RMSNorm → attention → residual, RMSNorm → gated MLP (with biases) → residual.</summary>
internal sealed class VisionBlock : nn.Module<Tensor, Tensor, Tensor, AttentionSegments, Tensor>
{
    private readonly RmsNorm norm1, norm2;
    private readonly VisionAttention attn;
    private readonly QwenMlp mlp;

    public VisionBlock(string name, QwenVisionConfig c, Device? device, ScalarType? dtype) : base(name)
    {
        norm1 = new RmsNorm("norm1", c.HiddenSize, 1e-6, device, dtype);
        norm2 = new RmsNorm("norm2", c.HiddenSize, 1e-6, device, dtype);
        attn = new VisionAttention("attn", c, device, dtype);
        mlp = new QwenMlp("mlp", c.HiddenSize, c.IntermediateSize, bias: true, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor cos, Tensor sin, AttentionSegments segments)
    {
        using var scope = NewDisposeScope();
        x = x + attn.call(norm1.call(x), cos, sin, segments);
        x = x + mlp.call(norm2.call(x));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>Patch merger: RMSNorm, then each merge unit's 4 patches concatenated → Linear → GELU → Linear to the LM width.</summary>
internal sealed class PatchMerger : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "ln_q")] private readonly RmsNorm lnQ;
    private readonly Sequential mlp;
    private readonly long mergedWidth;

    public PatchMerger(string name, QwenVisionConfig c, Device? device, ScalarType? dtype) : base(name)
    {
        mergedWidth = (long)c.HiddenSize * c.MergeUnit;
        lnQ = new RmsNorm("ln_q", c.HiddenSize, 1e-6, device, dtype);
        mlp = nn.Sequential(
            ("0", nn.Linear(mergedWidth, mergedWidth, device: device, dtype: dtype)),
            ("1", nn.GELU()),
            ("2", nn.Linear(mergedWidth, c.OutHiddenSize, device: device, dtype: dtype)));
        RegisterComponents();
    }

    /// <param name="x">(S, D) patches, merge units contiguous.</param>
    /// <returns>(S / unit, D_lm).</returns>
    public override Tensor forward(Tensor x) => mlp.call(lnQ.call(x).view(-1, mergedWidth));
}

/// <summary>
/// The Qwen2.5-VL vision tower: patch embedding, 2-D rotary positions, blocks with window attention (full attention
/// at <see cref="QwenVisionConfig.FullAttentionBlockIndexes"/>) over the patches reordered into windows, the patch
/// merger, and the inverse reordering, so image tokens come out in the processor's order.
/// </summary>
internal sealed class QwenVisionTransformer : nn.Module<Tensor, IReadOnlyList<ImageGrid>, Tensor>
{
    [ComponentName(Name = "patch_embed")] private readonly VisionPatchEmbed patchEmbed;
    private readonly ModuleList<VisionBlock> blocks;
    private readonly PatchMerger merger;
    private readonly QwenVisionConfig config;

    public QwenVisionTransformer(string name, QwenVisionConfig c, Device? device, ScalarType? dtype) : base(name)
    {
        config = c;
        patchEmbed = new VisionPatchEmbed("patch_embed", c, device, dtype);
        blocks = nn.ModuleList(Enumerable.Range(0, c.Depth).Select(i => new VisionBlock($"{i}", c, device, dtype)).ToArray());
        merger = new PatchMerger("merger", c, device, dtype);
        RegisterComponents();
    }

    /// <param name="pixelValues">(N, C·T·P·P) patches of all images, image after image.</param>
    /// <param name="grids">each image's grid (checked against <paramref name="pixelValues"/> by <see cref="ImageGrid.Read"/>).</param>
    /// <returns>(N / unit, D_lm) image embeddings, one per merged token, in the processor's order.</returns>
    public override Tensor forward(Tensor pixelValues, IReadOnlyList<ImageGrid> grids)
    {
        using var scope = NewDisposeScope();
        var device = pixelValues.device;
        var (windowIndex, cuWindows) = VisionLayout.WindowIndex(grids, config);
        var windowOrder = tensor(windowIndex, device: device);
        var windows = new AttentionSegments(cuWindows);
        var frames = new AttentionSegments(VisionLayout.FrameSeqlens(grids));

        var x = patchEmbed.call(pixelValues);                                              // (S, D)
        var (s, d) = (x.shape[0], x.shape[1]);
        x = x.view(s / config.MergeUnit, config.MergeUnit, d).index_select(0, windowOrder).reshape(s, d);
        var (cos, sin) = RotaryTables(grids, windowOrder, device);                         // (S, 1, hd)
        for (var i = 0; i < blocks.Count; i++)
            x = blocks[i].call(x, cos, sin, config.FullAttentionBlockIndexes.Contains(i) ? frames : windows);
        x = merger.call(x);                                                                // (S / unit, D_lm)
        return x.index_select(0, windowOrder.argsort()).MoveToOuterDisposeScope();
    }

    /// <summary>cos/sin (S, 1, hd) in float32: a quarter of each head turns with the patch row, a quarter with the column, repeated.</summary>
    private (Tensor Cos, Tensor Sin) RotaryTables(IReadOnlyList<ImageGrid> grids, Tensor windowOrder, Device device)
    {
        var (rows, cols) = VisionLayout.PatchPositions(grids, config.SpatialMergeSize);
        var positions = stack([tensor(rows, device: device), tensor(cols, device: device)], -1).to(float32); // (S, 2)
        var inverse = Rotary.InverseFrequencies(config.HeadDim / 2, 10000, device);                      // (hd/4)
        var angles = (positions.unsqueeze(-1) * inverse).flatten(1);                                      // (S, hd/2)
        var s = angles.shape[0];
        angles = angles.view(s / config.MergeUnit, config.MergeUnit, -1).index_select(0, windowOrder).reshape(s, -1);
        var full = cat([angles, angles], -1).unsqueeze(1);                                                // (S, 1, hd)
        return (full.cos(), full.sin());
    }
}
