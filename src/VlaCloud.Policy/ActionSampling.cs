using VlaCloud.Actions;
using VlaCloud.Policy.InternVla.Heads;
using static TorchSharp.torch;

namespace VlaCloud.Policy;

/// <summary>
/// A batch of action chunks being denoised, one step at a time (<see cref="VlaPolicy.StartSampling"/>). The observations'
/// prefix (vision, language, condition) has been computed; each <see cref="Step"/> is one denoising step of the whole
/// batch, so a caller (the inference worker) can run other batches' steps in between. The steps are the same arithmetic as
/// <see cref="VlaPolicy.SampleActions(IReadOnlyList{Observation}, IReadOnlyList{long}, int?, IReadOnlyList{PointGuide?}, double?, IReadOnlyList{string?})"/>,
/// which runs them back to back, so the result does not depend on what ran in between. Its tensors belong to no dispose
/// scope; use it on one thread and dispose it.
/// </summary>
public sealed class ActionSampling : IDisposable
{
    private readonly IReadOnlyList<(int[] Members, IDenoising Chain)> chains;
    private readonly NormalizationStats[] stats;
    private readonly (long H, long A) shape;

    internal ActionSampling(IReadOnlyList<(int[] Members, IDenoising Chain)> chains, NormalizationStats[] stats, long h, long a, int steps)
    {
        this.chains = chains;
        this.stats = stats;
        shape = (h, a);
        Steps = steps;
    }

    /// <summary>Denoising steps in all.</summary>
    public int Steps { get; }

    /// <summary>Steps taken so far.</summary>
    public int Completed { get; private set; }

    /// <summary>Whether every step has been taken (<see cref="Finish"/> may be called).</summary>
    public bool Done => Completed == Steps;

    /// <summary>Chunks in the batch.</summary>
    public int Count => stats.Length;

    /// <summary>Takes the next denoising step of every chunk.</summary>
    public void Step()
    {
        if (Done) throw new InvalidOperationException("every denoising step has been taken");
        using var inference = inference_mode();
        foreach (var (_, chain) in chains) chain.Step();
        Completed++;
    }

    /// <summary>
    /// Each chunk <c>[H, action_dim]</c> in its embodiment's units, in the order of the observations. Each row is
    /// unnormalised from the batch's (B, H, A) result straight into its chunk's buffer: the one copy between the tensor and
    /// the wire.
    /// </summary>
    public ActionChunk[] Finish()
    {
        if (!Done) throw new InvalidOperationException($"{Steps - Completed} denoising steps are still to take");
        using var scope = NewDisposeScope();
        var (h, a) = shape;
        var result = new ActionChunk[stats.Length];
        foreach (var (members, chain) in chains)
        {
            var flat = chain.Result().to(float32).cpu().data<float>().ToArray();
            for (var j = 0; j < members.Length; j++)
            {
                var s = stats[members[j]];
                result[members[j]] = ActionChunk.Create((int)h, s.ActionDim, (Flat: flat, Start: (int)(j * h * a), H: (int)h, A: (int)a, Stats: s), static (chunk, c) =>
                {
                    var dim = c.Stats.ActionDim;
                    for (var step = 0; step < c.H; step++)
                        c.Stats.UnnormalizeAction(c.Flat.AsSpan(c.Start + step * c.A, dim), chunk.Slice(step * dim, dim));
                });
            }
        }
        return result;
    }

    /// <summary>Releases the batch's tensors.</summary>
    public void Dispose()
    {
        foreach (var (_, chain) in chains) chain.Dispose();
    }
}

/// <summary>One group of samples denoised together: a step at a time, then the normalised (B, H, A) result.</summary>
internal interface IDenoising : IDisposable
{
    void Step();

    /// <summary>(B, H, A) in the caller's dispose scope.</summary>
    Tensor Result();
}

/// <summary>The DDIM chain of an InternVLA-M1 group.</summary>
internal sealed class DdimDenoising(DdimSampling sampling) : IDenoising
{
    public void Step() => sampling.Step();

    public Tensor Result() => sampling.Result();

    public void Dispose() => sampling.Dispose();
}

/// <summary>
/// The ST4VLA flow: x_t = t·noise + (1 − t)·action, integrated from t = 1 down to 0 by <paramref name="k"/> Euler steps of
/// the expert's velocity at step i (<see cref="Modules.ActionExpert.Velocity"/> over prepared steps). Owns its tensors
/// (none in a dispose scope).
/// </summary>
internal sealed class EulerDenoising(Func<Tensor, int, Tensor> velocity, Tensor x, int k, Tensor[] owned) : IDenoising
{
    private Tensor x = x;
    private int i;

    public void Step()
    {
        using var scope = NewDisposeScope();
        var next = x.add(velocity(x, i), -1.0 / k).DetachFromDisposeScope();
        x.Dispose();
        x = next;
        i++;
    }

    public Tensor Result() => x.alias();

    public void Dispose()
    {
        x.Dispose();
        foreach (var tensor in owned) tensor.Dispose();
    }
}
