using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using VlaCloud.Policy.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy.InternVla.Heads;

/// <summary>
/// The parts of <c>InternVLA_M1</c> besides Qwen2.5-VL, under its attribute names (<c>layer_qformer</c>,
/// <c>action_model</c>, <c>dino_encoder</c>, <c>dino_pro</c>) so <c>named_parameters()</c> matches the upstream state
/// dict: the DINOv2 stream and its projection to the VLM width, the layer-wise Q-Former that turns the VLM's chosen
/// hidden states (each followed by the DINO tokens) into condition tokens, and the DiT action model. Its forward is the
/// bridge (<see cref="Condition"/>); the DINO stream, the loss and sampling are methods.
/// </summary>
public sealed class InternVlaHeads : nn.Module<IReadOnlyList<Tensor>, Tensor, Tensor>
{
    [ComponentName(Name = "layer_qformer")] private readonly LayerwiseQFormer layerQformer;
    [ComponentName(Name = "action_model")] private readonly ActionModel actionModel;
    [ComponentName(Name = "dino_encoder")] private readonly DinoBackbone dinoEncoder;
    [ComponentName(Name = "dino_pro")] private readonly Linear dinoPro;
    private readonly InternVlaHeadsConfig config;

    /// <summary>Builds every head with upstream's initialisation.</summary>
    public InternVlaHeads(InternVlaHeadsConfig config) : base("internvla_m1")
    {
        config.Validate();
        this.config = config;
        layerQformer = new LayerwiseQFormer("layer_qformer", config.QFormer);
        actionModel = new ActionModel("action_model", config.ActionModel);
        dinoEncoder = new DinoBackbone("dino_encoder", config.Dino);
        dinoPro = nn.Linear(config.Dino.EmbedDim, config.VlmHiddenSize);
        RegisterComponents();
    }

    /// <summary>The sizes.</summary>
    public InternVlaHeadsConfig Config => config;

    /// <summary>The bridge.</summary>
    public LayerwiseQFormer QFormer => layerQformer;

    /// <summary>System 1.</summary>
    public ActionModel ActionModel => actionModel;

    /// <summary>The DINOv2 stream.</summary>
    public DinoBackbone Dino => dinoEncoder;

    /// <summary>
    /// The DINO stream of M1's forward: every view through DINOv2, each sample's views' patch tokens in a row, then
    /// <c>dino_pro</c> to the VLM width.
    /// </summary>
    /// <param name="views">(B, V, 3, H, W) prepared views (resized, normalised).</param>
    /// <returns>(B, V·N, D_vlm) DINO tokens.</returns>
    public Tensor DinoTokens(Tensor views)
    {
        if (views.dim() != 5 || views.shape[2] != 3) throw new ArgumentException($"views must be (B, V, 3, H, W), not [{string.Join(", ", views.shape)}]");
        using var scope = NewDisposeScope();
        var b = views.shape[0];
        var tokens = dinoEncoder.call(views.flatten(0, 1));                       // (B·V, N, C)
        return dinoPro.call(tokens.reshape(b, -1, tokens.shape[2])).MoveToOuterDisposeScope(); // (B, V·N, D_vlm)
    }

    /// <summary>
    /// The action condition of M1's forward: the VLM hidden states <c>[qformer_start_layer, qformer_end_layer)</c>, each
    /// followed along the sequence by the DINO tokens, through the Q-Former. With
    /// <see cref="QFormerConfig.GradientDecay"/> on, the gradient into the VLM states is multiplied by
    /// <see cref="QFormerConfig.GradScale"/> (the paper's gradient decay; the DINO tokens' gradient is untouched).
    /// </summary>
    /// <param name="vlmHiddenStates">The VLM's <c>hidden_states</c>: embeddings, then every layer's output, each (B, L, D_vlm).</param>
    /// <param name="dinoTokens">(B, V·N, D_vlm) from <see cref="DinoTokens"/>.</param>
    /// <returns>(B, Q, D_action) condition tokens.</returns>
    public Tensor Condition(IReadOnlyList<Tensor> vlmHiddenStates, Tensor dinoTokens) => call(vlmHiddenStates, dinoTokens);

    /// <summary>The module's forward: <see cref="Condition"/>.</summary>
    /// <param name="vlmHiddenStates">(B, L, D_vlm) each: the VLM's hidden states, embeddings first.</param>
    /// <param name="dinoTokens">(B, V·N, D_vlm).</param>
    /// <returns>(B, Q, D_action).</returns>
    public override Tensor forward(IReadOnlyList<Tensor> vlmHiddenStates, Tensor dinoTokens)
    {
        var q = config.QFormer;
        if (vlmHiddenStates.Count < q.EndLayer)
            throw new ArgumentException($"the Q-Former reads hidden states {q.StartLayer}..{q.EndLayer - 1} but the VLM gave {vlmHiddenStates.Count}");
        using var scope = NewDisposeScope();
        var layers = new List<Tensor>();
        for (var i = q.StartLayer; i < q.EndLayer; i++)
        {
            var state = q.GradientDecay ? GradientScale.Apply(vlmHiddenStates[i], q.GradScale) : vlmHiddenStates[i];
            layers.Add(cat([state, dinoTokens], 1));                              // (B, L + V·N, D_vlm)
        }
        return layerQformer.call(layers).MoveToOuterDisposeScope();              // (B, Q, D_action)
    }

    /// <summary>The diffusion loss of a batch of action chunks given their condition (see <see cref="ActionModel.ComputeLoss"/>).</summary>
    public DiffusionLoss ActionLoss(Tensor actions, Tensor condition, Tensor? noise = null, Tensor? timesteps = null) =>
        actionModel.ComputeLoss(actions, condition, noise, timesteps);

    /// <summary>Normalised action chunks for a condition (see <see cref="ActionModel.SampleActions"/>).</summary>
    public Tensor SampleActions(Tensor condition, Tensor? initialNoise = null, double? cfgScale = null, int? ddimSteps = null) =>
        actionModel.SampleActions(condition, initialNoise, cfgScale, ddimSteps);

    /// <summary><see cref="SampleActions"/> one DDIM step at a time (see <see cref="ActionModel.StartSampling"/>).</summary>
    public DdimSampling StartSampling(Tensor condition, Tensor? initialNoise = null, double? cfgScale = null, int? ddimSteps = null) =>
        actionModel.StartSampling(condition, initialNoise, cfgScale, ddimSteps);
}
