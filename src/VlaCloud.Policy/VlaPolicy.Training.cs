namespace VlaCloud.Policy;

public sealed partial class VlaPolicy
{
    /// <summary>
    /// The losses of a batch, in training mode, with autograd: call <c>Total.backward()</c>. Action
    /// samples give the flow-matching loss (their gradient into the VLM scaled by
    /// <see cref="PolicyConfig.GradientDecay"/>); spatial samples give the answer cross-entropy, skipped
    /// in vanilla mode. Noise and flow times come from the global generator (seed it with
    /// <c>torch.random.manual_seed</c> for reproducible runs). Run it inside the caller's dispose scope.
    /// The session prefix cache is emptied: a loss is computed to change the weights the prefixes were computed with.
    /// </summary>
    public PolicyLoss ComputeLoss(TrainingBatch batch)
    {
        Prefixes.Clear();
        return family.ComputeLoss(batch);
    }
}
