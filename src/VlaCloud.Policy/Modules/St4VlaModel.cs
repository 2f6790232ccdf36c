using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Modules;

/// <summary>
/// All weights of ST4VLA: System 2 (ViT + decoder + latent queries), the bridge and System 1. Its forward is System 2 to
/// the action condition; System 1 (the expert) runs on that condition per denoising step, through <see cref="Expert"/>.
/// </summary>
internal sealed class St4VlaModel : nn.Module<VlmSequence, double, Tensor>
{
    private readonly VisionEncoder vision;
    private readonly LanguageModel lm;
    private readonly Parameter queries;
    private readonly Bridge bridge;
    private readonly ActionExpert expert;
    private readonly int latentQueries;

    public St4VlaModel(PolicyConfig c) : base("st4vla")
    {
        vision = new VisionEncoder("vision", c);
        lm = new LanguageModel("lm", c);
        queries = nn.Parameter(randn(c.LatentQueries, c.LmWidth) * 0.02);
        bridge = new Bridge("bridge", c);
        expert = new ActionExpert("expert", c);
        latentQueries = c.LatentQueries;
        RegisterComponents();
    }

    public VisionEncoder Vision => vision;
    public LanguageModel Lm => lm;
    public Parameter Queries => queries;
    public Bridge Bridge => bridge;
    public ActionExpert Expert => expert;

    /// <summary>
    /// The decoder over a VLM sequence built with the latent queries (images and text embedded, see
    /// <c>St4VlaPolicyModel.Sequence</c>), the queries' hidden states through the bridge, which also attends to every valid token.
    /// </summary>
    /// <param name="sequence">(B, T, D) embeddings of <c>[image tokens; padding; text; latent queries]</c> and their masks.</param>
    /// <param name="gradientScale">Factor on the gradient into the VLM: 1 at inference, <see cref="PolicyConfig.GradientDecay"/> in training.</param>
    /// <returns>(B, Q, D_expert) conditioning tokens.</returns>
    public override Tensor forward(VlmSequence sequence, double gradientScale)
    {
        using var scope = NewDisposeScope();
        var hidden = lm.call(sequence.Embeds, sequence.Positions, sequence.Mask, null);   // (B, T, D)
        hidden = GradientScale.Apply(hidden, gradientScale);
        var queryStates = hidden[.., ^latentQueries..];                                    // (B, Q, D)
        return bridge.call(queryStates, hidden, sequence.KeyMask).MoveToOuterDisposeScope(); // (B, Q, D_expert)
    }
}
