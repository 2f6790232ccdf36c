using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Modules;

/// <summary>All weights of ST4VLA: System 2 (ViT + decoder + latent queries), the bridge and System 1.</summary>
internal sealed class St4VlaModel : nn.Module
{
    private readonly VisionEncoder vision;
    private readonly LanguageModel lm;
    private readonly Parameter queries;
    private readonly Bridge bridge;
    private readonly ActionExpert expert;

    public St4VlaModel(PolicyConfig c) : base("st4vla")
    {
        vision = new VisionEncoder("vision", c);
        lm = new LanguageModel("lm", c);
        queries = nn.Parameter(randn(c.LatentQueries, c.LmWidth) * 0.02);
        bridge = new Bridge("bridge", c);
        expert = new ActionExpert("expert", c);
        RegisterComponents();
    }

    public VisionEncoder Vision => vision;
    public LanguageModel Lm => lm;
    public Parameter Queries => queries;
    public Bridge Bridge => bridge;
    public ActionExpert Expert => expert;
}
