using TorchSharp;
using static TorchSharp.torch;

namespace VlaCloud.Policy.InternVla.Heads;

/// <summary>
/// The tensors of one diffusion training step: the loss and what it was computed from. All belong to the caller's
/// dispose scope.
/// </summary>
/// <param name="Loss">Scalar MSE between predicted and drawn noise.</param>
/// <param name="NoisyActions">(B·r, T, A) x_t.</param>
/// <param name="Noise">(B·r, T, A) ε.</param>
/// <param name="Timesteps">(B·r) int64 steps.</param>
/// <param name="NoisePrediction">(B·r, T, A) the DiT's ε̂.</param>
public sealed record DiffusionLoss(Tensor Loss, Tensor NoisyActions, Tensor Noise, Tensor Timesteps, Tensor NoisePrediction);

/// <summary>
/// InternVLA-M1's System 1 (<c>ActionModel</c> in <c>DiTActionHeader.py</c>): the <see cref="Dit"/> as <c>net</c>, trained
/// as a DDPM ε-predictor on the base process (<see cref="ActionModelConfig.DiffusionSteps"/> steps, cosine schedule) and
/// sampled with DDIM on a respaced process, with classifier-free guidance, as <c>InternVLA_M1.predict_action</c> does.
/// Its forward is upstream's: the training loss (<see cref="ComputeLoss"/>); sampling is <see cref="SampleActions"/>.
/// </summary>
public sealed class ActionModel : nn.Module<Tensor, Tensor, Tensor?, Tensor?, DiffusionLoss>
{
    private readonly Dit net;
    private readonly ActionModelConfig config;
    private readonly GaussianDiffusion diffusion;
    private readonly Dictionary<int, GaussianDiffusion> ddim = [];

    /// <summary>Builds the DiT and the base diffusion process.</summary>
    public ActionModel(string name, ActionModelConfig config) : base(name)
    {
        config.Validate();
        this.config = config;
        net = new Dit("net", config);
        diffusion = GaussianDiffusion.Create(config.DiffusionSteps, config.NoiseSchedule);
        RegisterComponents();
    }

    /// <summary>The sizes and sampling defaults.</summary>
    public ActionModelConfig Config => config;

    /// <summary>The transformer.</summary>
    public Dit Net => net;

    /// <summary>The base (training) process.</summary>
    public GaussianDiffusion Diffusion => diffusion;

    /// <summary>The DDIM process of <paramref name="steps"/> steps (<c>create_ddim</c>: base respaced with <c>ddimN</c>), made once per step count.</summary>
    public GaussianDiffusion Ddim(int steps)
    {
        lock (ddim)
        {
            if (!ddim.TryGetValue(steps, out var process))
                ddim[steps] = process = GaussianDiffusion.Create(config.DiffusionSteps, config.NoiseSchedule, $"ddim{steps}");
            return process;
        }
    }

    /// <summary>
    /// The action loss of <c>InternVLA_M1.forward</c> and <c>ActionModel.forward</c>/<c>loss</c>: the last chunk of each
    /// sample's actions and its condition are repeated <see cref="ActionModelConfig.RepeatedDiffusionSteps"/> times
    /// (<c>repeat</c>, so copies follow the whole batch), each copy gets ε ~ N(0, 1) and t ~ U{0 … steps − 1}, and the loss
    /// is the mean squared error of the DiT's ε̂ on x_t. In training mode the DiT drops conditions for guidance.
    /// </summary>
    /// <param name="actions">(B, ≥ T, A) normalised actions; the last T = chunk length steps are the target.</param>
    /// <param name="condition">(B, Q, D) the bridge's output.</param>
    /// <param name="noise">ε for the repeated batch, (B·r, T, A); drawn when null.</param>
    /// <param name="timesteps">t for the repeated batch, (B·r) int64; drawn when null.</param>
    public DiffusionLoss ComputeLoss(Tensor actions, Tensor condition, Tensor? noise = null, Tensor? timesteps = null) =>
        call(actions, condition, noise, timesteps);

    /// <summary>The module's forward: <see cref="ComputeLoss"/> (call that, or <c>call</c>, so hooks run).</summary>
    public override DiffusionLoss forward(Tensor actions, Tensor condition, Tensor? noise, Tensor? timesteps)
    {
        var (chunk, r) = (config.ChunkLength, config.RepeatedDiffusionSteps);
        if (actions.dim() != 3 || actions.shape[1] < chunk || actions.shape[2] != config.ActionDim)
            throw new ArgumentException($"actions must be (B, ≥ {chunk}, {config.ActionDim}), not [{string.Join(", ", actions.shape)}]");
        if (condition.dim() != 3 || condition.shape[0] != actions.shape[0])
            throw new ArgumentException("the condition must be (B, Q, D) with the actions' batch size");
        using var scope = NewDisposeScope();
        var target = actions[.., ^chunk..].repeat(r, 1, 1);                     // (B·r, T, A)
        var cond = condition.repeat(r, 1, 1);                                    // (B·r, Q, D)
        // Tensors the caller passed stay in the caller's scope; only drawn ones are moved out of this one.
        var (drawNoise, drawTimesteps) = (noise is null, timesteps is null);
        noise ??= randn_like(target);
        timesteps ??= randint(0, diffusion.NumTimesteps, [target.shape[0]], ScalarType.Int64, target.device);
        if (!noise.shape.SequenceEqual(target.shape)) throw new ArgumentException($"noise must be [{string.Join(", ", target.shape)}]");
        if (timesteps.dim() != 1 || timesteps.shape[0] != target.shape[0]) throw new ArgumentException($"timesteps must be ({target.shape[0]})");
        var noisy = diffusion.QSample(target, timesteps, noise);                 // (B·r, T, A)
        var predicted = net.call(noisy, timesteps, cond);                        // (B·r, T, A)
        var loss = (predicted - noise).pow(2).mean();
        return new DiffusionLoss(loss.MoveToOuterDisposeScope(), noisy.MoveToOuterDisposeScope(),
            drawNoise ? noise.MoveToOuterDisposeScope() : noise, drawTimesteps ? timesteps.MoveToOuterDisposeScope() : timesteps,
            predicted.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Samples normalised action chunks as <c>InternVLA_M1.predict_action</c> with DDIM: from x_T (drawn when not given),
    /// <paramref name="ddimSteps"/> deterministic DDIM steps (η 0, no clipping). With <paramref name="cfgScale"/> above 1
    /// the batch is <c>[condition; uncondition]</c> with the noise duplicated, the DiT runs through
    /// <see cref="Dit.ForwardWithCfg"/> and the first half is kept; otherwise the DiT runs on the condition alone.
    /// Runs without autograd; put the module in eval mode first (in training mode the DiT drops conditions).
    /// </summary>
    /// <param name="condition">(B, Q, D) the bridge's output.</param>
    /// <param name="initialNoise">(B, T, A) x_T, or null to draw it.</param>
    /// <param name="cfgScale">Guidance scale; null takes the config's (1.5).</param>
    /// <param name="ddimSteps">DDIM steps; null takes the config's (10).</param>
    /// <returns>(B, T, A) normalised actions.</returns>
    public Tensor SampleActions(Tensor condition, Tensor? initialNoise = null, double? cfgScale = null, int? ddimSteps = null)
    {
        using var sampling = StartSampling(condition, initialNoise, cfgScale, ddimSteps);
        while (!sampling.Done) sampling.Step();
        return sampling.Result();
    }

    /// <summary>
    /// <see cref="SampleActions"/> one DDIM step at a time (<see cref="DdimSampling.Step"/>), so a caller can run other
    /// work between steps; the steps are the same arithmetic as the whole loop. The sampling keeps its own references to
    /// what it needs (the caller may dispose <paramref name="condition"/> afterwards) and must be disposed.
    /// </summary>
    /// <remarks>
    /// The DiT passes are prepared (<see cref="Dit.PrepareConditionTokens"/>): the condition's embedding and every step's
    /// timestep embedding are computed here, once, and each step embeds only the actions and reads the final layer on the
    /// action tokens. Under guidance one DDIM state of B rows is kept and the DiT runs on it twice, batched with the
    /// condition and the uncondition. A float32 state gives bit-identical results to the per-step passes
    /// (<see cref="StartSamplingUnprepared"/>); another dtype takes those.
    /// </remarks>
    public DdimSampling StartSampling(Tensor condition, Tensor? initialNoise = null, double? cfgScale = null, int? ddimSteps = null)
    {
        // The state's dtype is the noise's, or the condition's when the noise is drawn (as before); only float32 is prepared.
        if ((initialNoise?.dtype ?? condition.dtype) != ScalarType.Float32) return StartSamplingUnprepared(condition, initialNoise, cfgScale, ddimSteps);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (scale, process, b, x) = SamplingInputs(condition, initialNoise, cfgScale, ddimSteps);
        var weights = condition.dtype;
        var guided = scale > 1.0;
        // Step i of the process (counting down) reads the base timestep map[i]; the steps are taken from the last.
        var timesteps = Enumerable.Range(0, process.NumTimesteps).Select(k => process.TimestepMap[process.NumTimesteps - 1 - k]).ToArray();
        var z = guided ? cat([condition, net.Uncondition.unsqueeze(0).expand(b, -1, -1).to(weights)], 0) : condition; // (B or 2B, Q, D)
        var tokens = net.PrepareConditionTokens(z, timesteps).Select(t => t.DetachFromDisposeScope()).ToArray();
        Func<Tensor, int, Tensor> model = guided
            ? (xt, k) =>
            {
                using var step = NewDisposeScope();
                var xw = xt.to(weights);
                var eps = net.ForwardPrepared(cat([xw, xw], 0), tokens[k]);              // (2B, T, A)
                var (c, u) = (eps[..(int)b], eps[(int)b..]);
                // Guided in the weights' dtype, then to the state's, as forward_with_cfg's result was.
                return (u + scale * (c - u)).to(float32).MoveToOuterDisposeScope();       // (B, T, A)
            }
            : (xt, k) => net.ForwardPrepared(xt.to(weights), tokens[k]).to(float32);
        // Step i of the process is the sampling's step NumTimesteps - 1 - i, whose prepared tokens are tokens[that].
        return new DdimSampling(process, (xt, i) => process.DdimUpdate(xt, model(xt, process.NumTimesteps - 1 - i), i),
            x.alias().DetachFromDisposeScope(), b, tokens);
    }

    /// <summary>The guidance scale, the DDIM process, the batch size and x_T (drawn in the caller's dispose scope when not given).</summary>
    private (double Scale, GaussianDiffusion Process, long Batch, Tensor Noise) SamplingInputs(Tensor condition, Tensor? initialNoise, double? cfgScale, int? ddimSteps)
    {
        var b = condition.shape[0];
        var x = initialNoise ?? randn([b, config.ChunkLength, config.ActionDim], condition.dtype, condition.device);
        if (!x.shape.SequenceEqual(new[] { b, config.ChunkLength, config.ActionDim }))
            throw new ArgumentException($"the initial noise must be [{b}, {config.ChunkLength}, {config.ActionDim}]");
        return (cfgScale ?? config.CfgScale, Ddim(ddimSteps ?? config.DdimSteps), b, x);
    }

    /// <summary>
    /// <see cref="StartSampling"/> as it was before the DiT passes were prepared: every step runs the whole DiT forward
    /// (timestep and condition embedders, the final layer on every token) and guidance keeps a doubled state of 2B rows
    /// (upstream's <c>forward_with_cfg</c>). Kept as the reference the prepared sampling is checked and measured against,
    /// and for a state that is not float32.
    /// </summary>
    internal DdimSampling StartSamplingUnprepared(Tensor condition, Tensor? initialNoise = null, double? cfgScale = null, int? ddimSteps = null)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (scale, process, b, x) = SamplingInputs(condition, initialNoise, cfgScale, ddimSteps);
        // The DDIM state stays in x's dtype (float32 in the policy, as upstream samples under a float32 autocast); the DiT
        // runs in the weights' dtype, so a bf16 model samples without its arithmetic promoting the state away from it.
        var (state, weights) = (x.dtype, condition.dtype);
        // Upstream guides only above 1 (predict_action's using_cfg = cfg_scale > 1.0).
        if (!(scale > 1.0))
        {
            var cond = condition.alias().DetachFromDisposeScope();
            return new DdimSampling(process, (xt, i) => process.DdimStep((xi, t) => net.call(xi.to(weights), t, cond).to(state), xt, i),
                x.alias().DetachFromDisposeScope(), b, [cond]);
        }
        var unconditional = net.Uncondition.unsqueeze(0).expand(b, -1, -1).to(weights);         // (B, Q, D)
        var z = cat([condition, unconditional], 0).DetachFromDisposeScope();                      // (2B, Q, D)
        return new DdimSampling(process, (xt, i) => process.DdimStep((xi, t) => net.ForwardWithCfg(xi.to(weights), t, z, scale).to(state), xt, i),
            cat([x, x], 0).DetachFromDisposeScope(), b, [z]);                                     // (2B, T, A)
    }
}

/// <summary>
/// A DDIM sampling in progress (<see cref="ActionModel.StartSampling"/>): x and the condition it is sampled under, owned
/// by this object and by no dispose scope, so they live across whatever the caller does between steps.
/// </summary>
public sealed class DdimSampling : IDisposable
{
    private readonly GaussianDiffusion process;
    private readonly Func<Tensor, int, Tensor> step;
    private readonly long rows;
    private readonly Tensor[] owned;
    private Tensor x;

    /// <param name="process">The DDIM process whose steps are taken.</param>
    /// <param name="step">The next x from x and the process's step index i (counting down), in the caller's dispose scope.</param>
    /// <param name="x">x_T, owned by the sampling from now on.</param>
    /// <param name="rows">The batch's rows (x may hold more: a doubled state under guidance).</param>
    /// <param name="owned">Tensors the step reads (the condition, prepared tokens), disposed with the sampling.</param>
    internal DdimSampling(GaussianDiffusion process, Func<Tensor, int, Tensor> step, Tensor x, long rows, Tensor[] owned)
    {
        this.process = process;
        this.step = step;
        this.x = x;
        this.rows = rows;
        this.owned = owned;
    }

    /// <summary>DDIM steps in all.</summary>
    public int Steps => process.NumTimesteps;

    /// <summary>Steps taken so far.</summary>
    public int Completed { get; private set; }

    /// <summary>Whether every step has been taken.</summary>
    public bool Done => Completed == Steps;

    /// <summary>Takes the next DDIM step.</summary>
    public void Step()
    {
        if (Done) throw new InvalidOperationException("every DDIM step has been taken");
        using var _ = no_grad();
        Tensor next;
        using (NewDisposeScope())
        {
            next = step(x, Steps - 1 - Completed).DetachFromDisposeScope();
        }
        x.Dispose();
        x = next;
        Completed++;
    }

    /// <summary>(B, T, A) the samples (the conditional half under guidance), in the caller's dispose scope.</summary>
    public Tensor Result()
    {
        if (!Done) throw new InvalidOperationException($"{Steps - Completed} DDIM steps are still to take");
        return x.shape[0] == rows ? x.alias() : x[..(int)rows];
    }

    /// <summary>Releases x and the condition.</summary>
    public void Dispose()
    {
        x.Dispose();
        foreach (var tensor in owned) tensor.Dispose();
    }
}
