using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy;

public sealed partial class VlaPolicy
{
    /// <summary>
    /// The losses of a batch, in training mode, with autograd: call <c>Total.backward()</c>. Action
    /// samples give the flow-matching loss (their gradient into the VLM scaled by
    /// <see cref="PolicyConfig.GradientDecay"/>); spatial samples give the answer cross-entropy, skipped
    /// in vanilla mode. Noise and flow times come from the global generator (seed it with
    /// <c>torch.random.manual_seed</c> for reproducible runs). Run it inside the caller's dispose scope.
    /// The session prefix cache is emptied (<see cref="WeightsChanged"/>): a loss is computed to change the weights.
    /// </summary>
    public PolicyLoss ComputeLoss(TrainingBatch batch)
    {
        // Not what keeps the cache right (the optimizer's step is, see CreateOptimizer), but it frees the cached prefixes
        // as training starts, when they will not be hit again.
        WeightsChanged();
        return family.ComputeLoss(batch);
    }

    /// <summary>
    /// Counts the changes of the weights or statistics that the session prefixes depend on (<see cref="WeightsChanged"/>);
    /// equal values mean nothing known to change them happened in between.
    /// </summary>
    public long WeightsVersion => Prefixes.Generation;

    /// <summary>
    /// Tells the policy that its weights (or statistics) changed, so nothing computed from the old ones is reused: the
    /// session prefix cache is emptied and <see cref="WeightsVersion"/> moves on. The policy's own paths call it (the
    /// optimizer of <see cref="CreateOptimizer"/> after every step, <see cref="ComputeLoss"/>,
    /// <see cref="SetNormalization"/>); code that writes into <see cref="Parameters"/> or <see cref="NamedParameters"/>
    /// itself (its own optimizer, <c>copy_</c>, an EMA swap) must call it afterwards.
    /// </summary>
    public void WeightsChanged() => Prefixes.Invalidate();

    /// <summary>
    /// AdamW that tells its policy after every step that the weights changed (<see cref="WeightsChanged"/>).
    /// </summary>
    /// <remarks>
    /// Why here and not a clear at each call site: the step is the one place where training changes the weights, and every
    /// loop in the code base (the trainer, the tests, the benchmarks, the parity checks) gets its optimizer from
    /// <see cref="CreateOptimizer"/>, so a loop cannot forget it. Clearing in <see cref="ComputeLoss"/> alone was not enough:
    /// a prefix cached between the loss and the step (a measurement, a served request on the same instance) outlived the
    /// step. Every other change of the weights makes a new policy (<see cref="Load"/>, <see cref="WithNewHead"/>, a device
    /// or dtype is fixed at construction; the trainer's copies with other switches are new instances), whose cache starts
    /// empty. libtorch's per-tensor version counter would catch writes the policy is not told of too, but TorchSharp
    /// does not expose it.
    /// </remarks>
    private sealed class PolicyAdamW(VlaPolicy policy, IEnumerable<AdamW.ParamGroup> groups, double lr, double beta1, double beta2, double weightDecay)
        : AdamW(groups, lr, beta1, beta2, weight_decay: weightDecay)
    {
        public override Tensor step(Func<Tensor>? closure = null)
        {
            try
            {
                return base.step(closure);
            }
            finally
            {
                // Also after a step that failed half-way: some parameters may have moved.
                policy.WeightsChanged();
            }
        }
    }
}
