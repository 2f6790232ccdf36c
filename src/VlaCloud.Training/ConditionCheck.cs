using VlaCloud.Policy;
using static TorchSharp.torch;

namespace VlaCloud.Training;

/// <summary>
/// What <see cref="ConditionCheck.Measure"/> found: the action loss of demonstration chunks with their own observations
/// and with another frame's, under the same noise, timesteps and dropout.
/// </summary>
/// <param name="Batches">Batches measured.</param>
/// <param name="OwnObservation">Mean action loss with each chunk's own observation (images, instruction, state).</param>
/// <param name="OtherObservation">Mean action loss with each chunk paired with the next sample's observation.</param>
public sealed record ConditionUse(int Batches, double OwnObservation, double OtherObservation)
{
    /// <summary>
    /// How much of the loss the observation explains: <c>1 − own / other</c>. Near 0 the action head has learned the
    /// actions' marginal distribution and does not read the observation, however low the loss is.
    /// </summary>
    public double Gap => OtherObservation > 0 ? 1 - OwnObservation / OtherObservation : 0;
}

/// <summary>
/// Whether a policy's action head reads its observation. A diffusion or flow-matching loss can fall far (0.07 for the
/// simulator's demonstrations) from the actions' marginal alone, since most noise levels can be denoised without
/// knowing the scene; such a policy samples plausible moves in random directions, and closed-loop success stays at 0.
/// Pairing each chunk with another frame's observation under the same random draws separates the two.
/// </summary>
public static class ConditionCheck
{
    /// <summary>
    /// The action loss of <paramref name="batches"/> batches of <paramref name="batchSize"/> demonstration chunks, once
    /// with their own observations and once with each chunk given the observation of the next sample in its batch,
    /// the torch generator reset to the same seed before both, so noise, timesteps and dropout are the same draws.
    /// The policy runs in training mode without gradients; its weights are not changed.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Fewer than one batch, or a batch of fewer than two samples.</exception>
    public static ConditionUse Measure(VlaPolicy policy, TrainingData data, int batches = 8, int batchSize = 8, long seed = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batches, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 2);
        var options = new CoTrainingOptions { BatchSize = batchSize, Seed = seed }.AsVanilla();
        var sampler = new BatchSampler(data, options, policy.Config.ChunkLength);
        double own = 0, other = 0;
        using var _ = no_grad();
        for (var b = 0; b < batches; b++)
        {
            var samples = sampler.Sample(b).Actions;
            // A point-guided sample's guide describes its observation's scene, so it moves with the observation.
            var shifted = samples.Select((s, i) => samples[(i + 1) % samples.Count] is var next ? s with { Observation = next.Observation, Guide = next.Guide } : s).ToArray();
            var drawSeed = BatchSampler.StepSeed(seed, b, 0xc0d);
            own += Loss(policy, samples, drawSeed);
            other += Loss(policy, shifted, drawSeed);
        }
        return new ConditionUse(batches, own / batches, other / batches);
    }

    private static double Loss(VlaPolicy policy, IReadOnlyList<ActionSample> samples, int drawSeed)
    {
        using var scope = NewDisposeScope();
        random.manual_seed(drawSeed);
        var loss = policy.ComputeLoss(new TrainingBatch(samples, []));
        return (loss.Action ?? loss.Total).item<float>();
    }
}
