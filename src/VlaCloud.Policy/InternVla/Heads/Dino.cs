using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using VlaCloud.Policy.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy.InternVla.Heads;

/// <summary>DINOv2's <c>PatchEmbed</c>: a stride-p convolution, flattened to tokens.</summary>
internal sealed class DinoPatchEmbed : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d proj;
    private readonly long patch;

    public DinoPatchEmbed(string name, long patch, long dim) : base(name)
    {
        proj = nn.Conv2d(3, dim, patch, stride: patch);
        this.patch = patch;
        RegisterComponents();
    }

    /// <param name="x">(B, 3, H, W) with H and W multiples of the patch.</param>
    /// <returns>(B, H/p · W/p, D) row-major patch tokens.</returns>
    public override Tensor forward(Tensor x)
    {
        var (h, w) = (x.shape[2], x.shape[3]);
        if (h % patch != 0 || w % patch != 0)
            throw new ArgumentException($"DINO input {h}×{w} is not a multiple of the {patch}-pixel patch");
        using var y = proj.call(x);             // (B, D, H/p, W/p)
        return y.flatten(2).transpose(1, 2);    // (B, N, D)
    }
}

/// <summary>DINOv2's <c>Block</c>: LN → attention → LayerScale → residual, LN → MLP → LayerScale → residual.</summary>
internal sealed class DinoBlock : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm norm1;
    private readonly FusedSelfAttention attn;
    private readonly LayerScale? ls1;
    private readonly LayerNorm norm2;
    private readonly GeluMlp mlp;
    private readonly LayerScale? ls2;

    public DinoBlock(string name, DinoConfig c) : base(name)
    {
        norm1 = nn.LayerNorm(c.EmbedDim, DinoVisionTransformer.NormEps);
        attn = new FusedSelfAttention("attn", c.EmbedDim, c.NumHeads);
        norm2 = nn.LayerNorm(c.EmbedDim, DinoVisionTransformer.NormEps);
        mlp = new GeluMlp("mlp", c.EmbedDim, c.MlpHidden);
        // Upstream uses nn.Identity (no parameter) when init_values is None or 0.
        if (c.InitValues is { } v && v != 0)
        {
            ls1 = new LayerScale("ls1", c.EmbedDim, v);
            ls2 = new LayerScale("ls2", c.EmbedDim, v);
        }
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var a = attn.call(norm1.call(x));
        x = x + (ls1 is null ? a : ls1.call(a));
        var m = mlp.call(norm2.call(x));
        x = x + (ls2 is null ? m : ls2.call(m));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// DINOv2's <c>DinoVisionTransformer</c> (facebookresearch/dinov2 @b48308a) as the hub builds ViT-S/14 for InternVLA-M1:
/// patch embedding, class token, learned positions bicubic-interpolated to the input's grid, pre-norm blocks with
/// LayerScale, final LayerNorm. <see cref="forward"/> gives <c>forward_features(x)["x_norm_patchtokens"]</c>.
/// Parameter names are upstream's (<c>cls_token</c>, <c>pos_embed</c>, <c>patch_embed.proj.*</c>, <c>blocks.i.*</c>, …).
/// </summary>
public sealed class DinoVisionTransformer : nn.Module<Tensor, Tensor>
{
    internal const double NormEps = 1e-6;

    [ComponentName(Name = "cls_token")] private readonly Parameter clsToken;
    [ComponentName(Name = "pos_embed")] private readonly Parameter posEmbed;
    // Used only for masked-image pre-training; kept so upstream checkpoints load with every tensor accounted for.
    [ComponentName(Name = "mask_token")] private readonly Parameter maskToken;
    [ComponentName(Name = "patch_embed")] private readonly DinoPatchEmbed patchEmbed;
    private readonly ModuleList<DinoBlock> blocks;
    private readonly LayerNorm norm;
    private readonly DinoConfig config;

    /// <summary>Builds the transformer with upstream's initialisation (truncated-normal linears and positions).</summary>
    public DinoVisionTransformer(string name, DinoConfig config) : base(name)
    {
        config.Validate();
        this.config = config;
        long d = config.EmbedDim, grid = config.PositionGrid;
        clsToken = nn.Parameter(zeros(1, 1, d));
        posEmbed = nn.Parameter(zeros(1, grid * grid + 1, d));
        maskToken = nn.Parameter(zeros(1, d));
        patchEmbed = new DinoPatchEmbed("patch_embed", config.PatchSize, d);
        blocks = nn.ModuleList(Enumerable.Range(0, config.Depth).Select(i => new DinoBlock($"{i}", config)).ToArray());
        norm = nn.LayerNorm(d, NormEps);
        RegisterComponents();

        using var _ = no_grad();
        nn.init.trunc_normal_(posEmbed, std: 0.02);
        nn.init.normal_(clsToken, std: 1e-6);
        HeadInit.Linears(this, w => nn.init.trunc_normal_(w, std: 0.02));
    }

    /// <summary>The sizes this transformer was built with.</summary>
    public DinoConfig Config => config;

    /// <param name="x">(B, 3, H, W) normalised images, H and W multiples of the patch size.</param>
    /// <returns>(B, H/p · W/p, D) normalised patch tokens (<c>x_norm_patchtokens</c>).</returns>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var (b, h, w) = (x.shape[0], x.shape[2], x.shape[3]);
        var tokens = patchEmbed.call(x);                                              // (B, N, D)
        tokens = cat([clsToken.expand(b, -1, -1), tokens], 1);                        // (B, 1+N, D)
        tokens = tokens + PositionEmbedding(tokens.shape[1] - 1, h, w, tokens.dtype);
        foreach (var block in blocks) tokens = block.call(tokens);
        return norm.call(tokens)[.., 1..].MoveToOuterDisposeScope();                  // (B, N, D)
    }

    /// <summary>
    /// Upstream's <c>interpolate_pos_encoding</c>: the learned M×M grid, resized bicubically (align_corners off) to the
    /// input's grid. With an offset the resize is given as the scale factor (grid + offset) / M, which libtorch also uses
    /// to map output to input coordinates, so the result differs from resizing to the size; TorchSharp's interpolate
    /// passes the scale factor through to the same libtorch kernel (recompute_scale_factor off), as torch does.
    /// </summary>
    /// <returns>(1, 1 + N, D) positions of the class token and the patches.</returns>
    private Tensor PositionEmbedding(long patches, long height, long width, ScalarType dtype)
    {
        var m = config.PositionGrid;
        if (patches == (long)m * m && height == width) return posEmbed;
        using var scope = NewDisposeScope();
        var dim = posEmbed.shape[2];
        var full = posEmbed.to(float32);
        var cls = full[.., ..1];                                                     // (1, 1, D)
        var grid = full[.., 1..].reshape(1, m, m, dim).permute(0, 3, 1, 2);          // (1, D, M, M)
        long rows = height / config.PatchSize, cols = width / config.PatchSize;
        var resized = config.InterpolateOffset != 0
            ? nn.functional.interpolate(grid, scale_factor: [(rows + config.InterpolateOffset) / m, (cols + config.InterpolateOffset) / m],
                mode: InterpolationMode.Bicubic, align_corners: false, antialias: config.InterpolateAntialias)
            : nn.functional.interpolate(grid, size: [rows, cols], mode: InterpolationMode.Bicubic, align_corners: false, antialias: config.InterpolateAntialias);
        if (resized.shape[2] != rows || resized.shape[3] != cols)
            throw new InvalidOperationException($"position grid resized to {resized.shape[2]}×{resized.shape[3]}, expected {rows}×{cols}");
        var patchPositions = resized.permute(0, 2, 3, 1).reshape(1, rows * cols, dim); // (1, N, D)
        return cat([cls, patchPositions], 1).to(dtype).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// InternVLA-M1's <c>DINOv2BackBone</c>: the DINOv2 transformer as <c>body</c>, whose forward maps already-prepared
/// views (<c>prepare_dino_input</c>: Resize(224), ToTensor, ImageNet normalisation) to patch tokens.
/// </summary>
public sealed class DinoBackbone : nn.Module<Tensor, Tensor>
{
    private readonly DinoVisionTransformer body;

    /// <summary>Builds the wrapper around a freshly initialised transformer.</summary>
    public DinoBackbone(string name, DinoConfig config) : base(name)
    {
        body = new DinoVisionTransformer("body", config);
        RegisterComponents();
    }

    /// <summary>The DINOv2 transformer.</summary>
    public DinoVisionTransformer Body => body;

    /// <summary>Width of the patch tokens (<c>num_channels</c>).</summary>
    public int NumChannels => body.Config.EmbedDim;

    /// <param name="views">(B·V, 3, H, W) normalised views.</param>
    /// <returns>(B·V, N, C) patch tokens.</returns>
    public override Tensor forward(Tensor views) => body.call(views);
}
