using VlaCloud.Policy.Checkpoint;
using VlaCloud.Policy.InternVla.Heads;
using static TorchSharp.torch;

namespace VlaCloud.Parity;

/// <summary>
/// The DINOv2 stream (<c>dino_tiny.*</c>): InternVLA-M1's wrapper forward on the prepared 224×224 views (position grid
/// interpolated from the config's grid) and on a non-square input.
/// </summary>
public sealed class DinoParity : IParityCheck
{
    /// <inheritdoc />
    public string Name => "dino";

    /// <inheritdoc />
    public bool AppliesTo(string folder) => File.Exists(Path.Combine(folder, "dino_tiny.io.safetensors"));

    /// <inheritdoc />
    public IEnumerable<ParityResult> Run(string folder)
    {
        using var dino = new DinoBackbone("dino_encoder", HeadsFixtures.Dino(folder));
        using (var weights = ParityChecks.Open(folder, "dino_tiny.safetensors")) ModuleWeights.Load(dino, weights);
        dino.eval();
        using var io = ParityChecks.Open(folder, "dino_tiny.io.safetensors");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        return
        [
            ParityResult.Compare("x_norm_patchtokens", dino.call(io.Read("prepared_input")), io.Read("x_norm_patchtokens")),
            ParityResult.Compare("x_norm_patchtokens_small", dino.call(io.Read("raw_input_small")), io.Read("x_norm_patchtokens_small")),
        ];
    }
}

/// <summary>The layer-wise Q-Former (<c>qformer_tiny.*</c>): its output for the fixture's per-layer hidden states, in eval mode.</summary>
public sealed class QFormerParity : IParityCheck
{
    /// <inheritdoc />
    public string Name => "qformer";

    /// <inheritdoc />
    public bool AppliesTo(string folder) => File.Exists(Path.Combine(folder, "qformer_tiny.io.safetensors"));

    /// <inheritdoc />
    public IEnumerable<ParityResult> Run(string folder)
    {
        var config = HeadsFixtures.QFormer(folder);
        using var qformer = new LayerwiseQFormer("layer_qformer", config);
        using (var weights = ParityChecks.Open(folder, "qformer_tiny.safetensors")) ModuleWeights.Load(qformer, weights);
        qformer.eval();
        using var io = ParityChecks.Open(folder, "qformer_tiny.io.safetensors");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var states = Enumerable.Range(0, config.Layers).Select(i => io.Read($"hidden_states_list.{i}")).ToList();
        return [ParityResult.Compare("qformer_output", qformer.call(states), io.Read("output"))];
    }
}

/// <summary>
/// The DiT action model (<c>dit_tiny.*</c>): the schedules (betas and ᾱ of the base process, ᾱ and the timestep map of
/// the DDIM process), one training step from the fixture's drawn noise and timesteps (x_t, ε̂, loss), and DDIM sampling
/// from its initial noise with and without classifier-free guidance.
/// </summary>
public sealed class DitParity : IParityCheck
{
    /// <inheritdoc />
    public string Name => "dit";

    /// <inheritdoc />
    public bool AppliesTo(string folder) => File.Exists(Path.Combine(folder, "dit_tiny.io.safetensors"));

    /// <inheritdoc />
    public IEnumerable<ParityResult> Run(string folder)
    {
        var config = HeadsFixtures.Dit(folder);
        using var model = new ActionModel("action_model", config);
        using (var weights = ParityChecks.Open(folder, "dit_tiny.safetensors")) ModuleWeights.Load(model, weights);
        // The fixture ran in eval mode: no condition dropout.
        model.eval();
        using var io = ParityChecks.Open(folder, "dit_tiny.io.safetensors");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ddim = model.Ddim(config.DdimSteps);
        var results = new List<ParityResult>
        {
            ParityResult.Compare("base_betas", tensor(model.Diffusion.Betas.ToArray()), io.Read("base.betas")),
            ParityResult.Compare("base_alphas_cumprod", tensor(model.Diffusion.AlphasCumprod), io.Read("base.alphas_cumprod")),
            ParityResult.Compare("ddim_alphas_cumprod", tensor(ddim.AlphasCumprod), io.Read("ddim.alphas_cumprod")),
            ParityResult.CompareExact("ddim_timestep_map", ddim.TimestepMap, io.Read("ddim.timestep_map").data<long>().ToArray()),
        };

        var step = model.ComputeLoss(io.Read("gt_action"), io.Read("condition"), io.Read("train.noise"), io.Read("train.timestep"));
        results.Add(ParityResult.Compare("train_x_t", step.NoisyActions, io.Read("train.x_t")));
        results.Add(ParityResult.Compare("train_noise_pred", step.NoisePrediction, io.Read("train.noise_pred")));
        results.Add(ParityResult.Compare("train_loss", step.Loss.reshape(1), io.Read("train.loss")));

        var condition = io.Read("condition");
        var noise = io.Read("ddim.initial_noise");
        results.Add(ParityResult.Compare("ddim_samples_cfg", model.SampleActions(condition, noise, config.CfgScale, config.DdimSteps), io.Read("ddim.samples_cfg")));
        results.Add(ParityResult.Compare("ddim_samples_no_cfg", model.SampleActions(condition, noise, 1.0, config.DdimSteps), io.Read("ddim.samples_no_cfg")));
        return results;
    }
}
