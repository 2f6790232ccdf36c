using TorchSharp;
using VlaCloud.Policy.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy;

/// <summary>A VLM input sequence: <c>[image tokens; left padding; text; latent queries?]</c> per sample.</summary>
/// <param name="Embeds">(B, T, D) input embeddings.</param>
/// <param name="Positions">(B, T) rotary positions: count of valid tokens before each one.</param>
/// <param name="Mask">(B, 1, T, T) additive mask.</param>
/// <param name="KeyMask">(B, 1, 1, T) additive mask of valid tokens (for the bridge's cross-attention).</param>
/// <param name="Valid">valid tokens per sample and position.</param>
/// <param name="TextStart">where each sample's text begins.</param>
internal sealed record VlmSequence(Tensor Embeds, Tensor Positions, Tensor Mask, Tensor KeyMask, bool[,] Valid, int[] TextStart);

internal sealed partial class St4VlaPolicyModel
{
    /// <summary>RGB bytes of up to MaxCameras images per sample → (B, C, 3, S, S) in [−1, 1], missing cameras zero.</summary>
    internal Tensor Images(IReadOnlyList<IReadOnlyList<CameraImage>> perSample, out int cameras)
    {
        CheckCameras(perSample);
        cameras = perSample.Max(s => s.Count);
        var size = Config.ImageSize;
        using var scope = NewDisposeScope();
        var all = zeros([perSample.Count, cameras, 3, size, size], float32);
        for (var b = 0; b < perSample.Count; b++)
        {
            for (var c = 0; c < perSample[b].Count; c++)
            {
                var img = perSample[b][c];
                var x = tensor(img.Rgb, [img.Height, img.Width, 3], ScalarType.Byte).permute(2, 0, 1).unsqueeze(0).to(float32) / 255f;
                if (img.Width != size || img.Height != size)
                    x = nn.functional.interpolate(x, [size, size], mode: InterpolationMode.Bilinear, align_corners: false);
                all[b, c] = x[0] * 2 - 1;
            }
        }
        return HostUpload.ToDevice(all, Device, DType).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The images of spatial questions: only each sample's first camera, whose pixels the coordinates are in.
    /// Another view shows the same objects elsewhere; with it in the input the tiny VLM stayed at chance on
    /// pointing at a lone object, and learned it to 3 px without it (README, experiment). The paper's grounding
    /// data likewise has one image per question.
    /// </summary>
    internal (Tensor Images, int[] CameraCounts) SpatialImages(IEnumerable<IReadOnlyList<CameraImage>> perSample)
    {
        var all = perSample.ToList();
        // Every view is checked, as for an action request, so both kinds of request refuse the same input.
        CheckCameras(all);
        var first = all.Select(images => (IReadOnlyList<CameraImage>)[images[0]]).ToList();
        return (Images(first, out _), [.. first.Select(_ => 1)]);
    }

    /// <summary>Text → ids, cut to MaxTextTokens.</summary>
    internal int[] TextIds(string text)
    {
        var ids = Tokenizer.Encode(text);
        return ids.Length > Config.MaxTextTokens ? ids[..Config.MaxTextTokens] : ids;
    }

    /// <summary>Builds the VLM input; image rows attend to all images, query rows to all queries, everything else causally.</summary>
    internal VlmSequence Sequence(Tensor images, int[] cameraCounts, IReadOnlyList<int[]> text, bool withQueries)
    {
        using var scope = NewDisposeScope();
        var b = text.Count;
        var p = Config.PatchesPerImage;
        var cams = (int)images.shape[1];
        var nImg = cams * p;
        var maxText = text.Max(t => t.Length);
        var nQ = withQueries ? Config.LatentQueries : 0;
        var total = nImg + maxText + nQ;

        var ids = new long[b, maxText];
        var valid = new bool[b, total];
        var positions = new long[b, total];
        var textStart = new int[b];
        for (var i = 0; i < b; i++)
        {
            for (var j = 0; j < cameraCounts[i] * p; j++) valid[i, j] = true;
            textStart[i] = nImg + maxText - text[i].Length;
            for (var j = 0; j < text[i].Length; j++)
            {
                ids[i, maxText - text[i].Length + j] = text[i][j];
                valid[i, textStart[i] + j] = true;
            }
            for (var j = 0; j < nQ; j++) valid[i, nImg + maxText + j] = true;
            long count = 0;
            for (var j = 0; j < total; j++)
            {
                positions[i, j] = Math.Max(count - 1 + (valid[i, j] ? 1 : 0), 0);
                if (valid[i, j]) count++;
            }
        }

        var padId = Tokenizer.PadId;
        for (var i = 0; i < b; i++) for (var j = 0; j < maxText - text[i].Length; j++) ids[i, j] = padId;
        var parts = new List<Tensor> { Model.Vision.call(images) };                                   // (B, C·P, D)
        if (maxText > 0) parts.Add(Model.Lm.Embed(tensor(ids, device: Device)));                       // (B, Lt, D)
        if (nQ > 0) parts.Add(Model.Queries.unsqueeze(0).expand(b, -1, -1));                           // (B, Q, D)
        var embeds = cat(parts, 1);                                                                     // (B, T, D)

        var validT = tensor(Flatten(valid), [b, total], device: Device);
        var idx = arange(total, device: Device);
        var kind = zeros(total, int64, Device);                                                         // 0 image, 1 text, 2 query
        kind[TensorIndex.Slice(nImg, nImg + maxText)] = 1;
        if (nQ > 0) kind[TensorIndex.Slice(nImg + maxText, total)] = 2;
        var causal = idx.unsqueeze(0) <= idx.unsqueeze(1);                                             // (T, T)
        var sameBlock = (kind.unsqueeze(0) == kind.unsqueeze(1)) & (kind.unsqueeze(1) != 1);          // image↔image, query↔query
        var allowed = (causal | sameBlock).unsqueeze(0) & validT.unsqueeze(1);                          // (B, T, T)
        var mask = Additive(allowed).unsqueeze(1);                                                      // (B, 1, T, T)
        var keyMask = Additive(validT).unsqueeze(1).unsqueeze(1);                                       // (B, 1, 1, T)
        return new VlmSequence(embeds.MoveToOuterDisposeScope(), tensor(positions, device: Device).MoveToOuterDisposeScope(),
            mask.MoveToOuterDisposeScope(), keyMask.MoveToOuterDisposeScope(), valid, textStart);
    }

    internal Tensor Additive(Tensor allowed) =>
        where(allowed, zeros(1, DType, Device), full(1, float.NegativeInfinity, DType, Device));

    /// <summary>The VLM pass of action samples → (B, Q, D_expert) conditioning tokens.</summary>
    internal Tensor Condition(IReadOnlyList<Observation> observations, double gradientDecay)
    {
        using var scope = NewDisposeScope();
        var images = Images(observations.Select(o => o.Images).ToList(), out _);
        var text = observations.Select(o => TextIds(Config.Vanilla ? o.Instruction : SpatialPrompts.ForAction(o.Instruction))).ToList();
        var seq = Sequence(images, observations.Select(o => o.Images.Count).ToArray(), text, withQueries: true);
        return Model.call(seq, gradientDecay).MoveToOuterDisposeScope();                       // (B, Q, De)
    }

    private static T[] Flatten<T>(T[,] a)
    {
        var r = new T[a.Length];
        var k = 0;
        foreach (var v in a) r[k++] = v;
        return r;
    }
}
