using VlaCloud.Parity;
using VlaCloud.Policy.Checkpoint;
using VlaCloud.Policy.InternVla.Heads;

namespace VlaCloud.Policy.Tests.InternVla;

/// <summary>Small head configs and modules read from the fixture folder's configs (no size is written here).</summary>
internal static class TinyHeads
{
    public static DinoConfig Dino => HeadsFixtures.Dino(GoldenFixtures.InternVlaM1);
    public static QFormerConfig QFormer => HeadsFixtures.QFormer(GoldenFixtures.InternVlaM1);
    public static ActionModelConfig Dit => HeadsFixtures.Dit(GoldenFixtures.InternVlaM1);

    /// <summary>
    /// All heads at the fixtures' sizes, made to fit together: the Q-Former's width and query count are the DiT's
    /// (the fixtures' Q-Former and DiT were made separately and differ there).
    /// </summary>
    public static InternVlaHeadsConfig Config
    {
        get
        {
            var (dit, qformer) = (Dit, QFormer);
            return new InternVlaHeadsConfig(Dino, qformer with { OutputDim = dit.TokenSize, NumQueryTokens = dit.ConditionTokens }, dit, qformer.InputDim);
        }
    }

    /// <summary>The fixture's action model with its upstream weights, in eval mode.</summary>
    public static ActionModel LoadedActionModel(ActionModelConfig? config = null)
    {
        var model = new ActionModel("action_model", config ?? Dit);
        using (var weights = SafetensorsFile.Open(GoldenFixtures.File("dit_tiny.safetensors"))) ModuleWeights.Load(model, weights);
        model.eval();
        return model;
    }
}
