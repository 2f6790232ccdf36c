using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Modules;

/// <summary>Pre-norm transformer block with bidirectional attention (ViT and bridge).</summary>
internal sealed class EncoderBlock : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm norm1, norm2;
    private readonly Attention attn;
    private readonly GeluMlp mlp;

    public EncoderBlock(string name, long dim, long heads) : base(name)
    {
        norm1 = nn.LayerNorm(dim);
        attn = new Attention("attn", dim, heads);
        norm2 = nn.LayerNorm(dim);
        mlp = new GeluMlp("mlp", dim, 4 * dim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = norm1.call(x);
        x = x + attn.call(h, h, null);
        x = x + mlp.call(norm2.call(x));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// ViT image encoder: patch embedding (linear, or behind a convolutional stem), learned positions,
/// bidirectional blocks, then a projection into the language model's width plus a learned per-camera embedding.
/// </summary>
internal sealed class VisionEncoder : nn.Module<Tensor, Tensor>
{
    private readonly Sequential? stem;
    private readonly Conv2d patch;
    private readonly Parameter position, camera;
    private readonly ModuleList<EncoderBlock> blocks;
    private readonly LayerNorm norm;
    private readonly Linear project;

    public VisionEncoder(string name, PolicyConfig c) : base(name)
    {
        var patches = c.PatchesPerImage;
        if (c.VisionStemKind == VisionStemKind.Conv)
        {
            // Two stride-2 convolutions take the image to a quarter of its side; the patch projection covers the rest.
            stem = nn.Sequential(
                ("conv1", nn.Conv2d(3, c.StemChannels1, 3, stride: 2, padding: 1)), ("act1", nn.GELU()),
                ("conv2", nn.Conv2d(c.StemChannels1, c.StemChannels2, 3, stride: 2, padding: 1)), ("act2", nn.GELU()));
            patch = nn.Conv2d(c.StemChannels2, c.VisionWidth, c.PatchSize / 4, stride: c.PatchSize / 4);
        }
        else
        {
            patch = nn.Conv2d(3, c.VisionWidth, c.PatchSize, stride: c.PatchSize);
        }
        position = nn.Parameter(randn(1, patches, c.VisionWidth) * 0.02);
        blocks = nn.ModuleList(Enumerable.Range(0, c.VisionLayers).Select(i => new EncoderBlock($"block{i}", c.VisionWidth, c.VisionHeads)).ToArray());
        norm = nn.LayerNorm(c.VisionWidth);
        project = nn.Linear(c.VisionWidth, c.LmWidth);
        camera = nn.Parameter(randn(c.MaxCameras, c.LmWidth) * 0.02);
        RegisterComponents();
    }

    /// <param name="images">(B, C, 3, S, S) normalised images of C cameras.</param>
    /// <returns>(B, C·P, D_lm) image tokens.</returns>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var (b, cams) = (images.shape[0], images.shape[1]);
        var pixels = images.flatten(0, 1);                  // (B·C, 3, S, S)
        if (stem is not null) pixels = stem.call(pixels);   // (B·C, C2, S/4, S/4)
        var x = patch.call(pixels);                         // (B·C, Dv, S/p, S/p)
        x = x.flatten(2).transpose(1, 2) + position;        // (B·C, P, Dv)
        foreach (var block in blocks) x = block.call(x);
        x = project.call(norm.call(x));                     // (B·C, P, D)
        x = x.view(b, cams, x.shape[1], x.shape[2]) + camera[..(int)cams].unsqueeze(1); // (B, C, P, D)
        return x.flatten(1, 2).MoveToOuterDisposeScope();   // (B, C·P, D)
    }
}
