using static TorchSharp.torch;

namespace VlaCloud.Policy.InternVla.Heads;

/// <summary>
/// The Gaussian diffusion InternVLA-M1 vendors from OpenAI's guided-diffusion (<c>gaussian_diffusion.py</c>,
/// <c>respace.py</c>) as its <c>ActionModel</c> uses it: ε-prediction, fixed small variances, MSE loss. Schedule
/// arrays are float64, as upstream's numpy; each coefficient becomes float32 when it meets a tensor
/// (<c>_extract_into_tensor</c>). A respaced process keeps a subset of the base timesteps (<see cref="TimestepMap"/>)
/// with betas recomputed from the kept cumulative alphas; its model is called with base timesteps.
/// </summary>
public sealed class GaussianDiffusion
{
    /// <summary>The cosine schedule's name in upstream configs.</summary>
    public const string CosineSchedule = "squaredcos_cap_v2";

    private readonly double[] sqrtAlphasCumprod, sqrtOneMinusAlphasCumprod, sqrtRecipAlphasCumprod, sqrtRecipm1AlphasCumprod;
    private readonly long[] timestepMap;

    private GaussianDiffusion(double[] betas, long[] timestepMap)
    {
        if (betas.Any(b => !(b > 0 && b <= 1))) throw new ArgumentException("betas must be in (0, 1]");
        Betas = betas;
        this.timestepMap = timestepMap;
        var n = betas.Length;
        AlphasCumprod = new double[n];
        var product = 1.0;
        for (var i = 0; i < n; i++) AlphasCumprod[i] = product *= 1.0 - betas[i];
        AlphasCumprodPrev = [1.0, .. AlphasCumprod[..^1]];
        sqrtAlphasCumprod = [.. AlphasCumprod.Select(Math.Sqrt)];
        sqrtOneMinusAlphasCumprod = [.. AlphasCumprod.Select(a => Math.Sqrt(1.0 - a))];
        sqrtRecipAlphasCumprod = [.. AlphasCumprod.Select(a => Math.Sqrt(1.0 / a))];
        sqrtRecipm1AlphasCumprod = [.. AlphasCumprod.Select(a => Math.Sqrt(1.0 / a - 1))];
    }

    /// <summary>β per step of this process.</summary>
    public IReadOnlyList<double> Betas { get; }

    /// <summary>ᾱ per step (cumulative product of 1 − β).</summary>
    public double[] AlphasCumprod { get; }

    /// <summary>ᾱ of the step before (1 before the first).</summary>
    public double[] AlphasCumprodPrev { get; }

    /// <summary>Steps of this process.</summary>
    public int NumTimesteps => Betas.Count;

    /// <summary>The base timestep of each step of this process (the identity unless respaced).</summary>
    public IReadOnlyList<long> TimestepMap => timestepMap;

    /// <summary>
    /// The process of <c>create_diffusion</c>: <paramref name="steps"/> steps of the named schedule, respaced when
    /// <paramref name="respacing"/> is given (<c>ddimN</c>, or comma-separated step counts per section).
    /// </summary>
    public static GaussianDiffusion Create(int steps, string schedule = CosineSchedule, string? respacing = null)
    {
        if (schedule != CosineSchedule) throw new ArgumentException($"noise_schedule '{schedule}' is not built (only {CosineSchedule})");
        if (steps < 1) throw new ArgumentException("diffusion steps must be positive");
        var baseProcess = new GaussianDiffusion(CosineBetas(steps), [.. Enumerable.Range(0, steps).Select(i => (long)i)]);
        if (string.IsNullOrEmpty(respacing)) return baseProcess;
        var kept = SpaceTimesteps(steps, respacing);
        var betas = new List<double>();
        var map = new List<long>();
        var last = 1.0;
        for (var i = 0; i < steps; i++)
        {
            if (!kept.Contains(i)) continue;
            betas.Add(1 - baseProcess.AlphasCumprod[i] / last);
            last = baseProcess.AlphasCumprod[i];
            map.Add(i);
        }
        return new GaussianDiffusion([.. betas], [.. map]);
    }

    /// <summary>
    /// <c>betas_for_alpha_bar</c> with ᾱ(t) = cos²((t + 0.008) / 1.008 · π/2) (<c>squaredcos_cap_v2</c>), β capped at 0.999.
    /// </summary>
    public static double[] CosineBetas(int steps)
    {
        static double AlphaBar(double t) => Math.Pow(Math.Cos((t + 0.008) / 1.008 * Math.PI / 2), 2);
        var betas = new double[steps];
        for (var i = 0; i < steps; i++)
        {
            double t1 = (double)i / steps, t2 = (double)(i + 1) / steps;
            betas[i] = Math.Min(1 - AlphaBar(t2) / AlphaBar(t1), 0.999);
        }
        return betas;
    }

    /// <summary>
    /// Upstream's <c>space_timesteps</c>: <c>ddimN</c> keeps <c>range(0, steps, stride)</c> for the stride giving exactly
    /// N steps (N = 1 keeps step 50, as upstream); otherwise comma-separated counts spread evenly over equal sections.
    /// </summary>
    public static SortedSet<int> SpaceTimesteps(int steps, string sectionCounts)
    {
        if (sectionCounts.StartsWith("ddim", StringComparison.Ordinal))
        {
            if (!int.TryParse(sectionCounts["ddim".Length..], out var desired) || desired < 1)
                throw new ArgumentException($"'{sectionCounts}' is not ddim followed by a positive step count");
            if (desired == 1) return [50];
            for (var stride = 1; stride < steps; stride++)
                if ((steps + stride - 1) / stride == desired)
                    return [.. Enumerable.Range(0, desired).Select(k => k * stride)];
            throw new ArgumentException($"cannot create exactly {desired} steps from {steps} with an integer stride");
        }
        var counts = sectionCounts.Split(',').Select(s => int.TryParse(s, out var c) && c >= 0 ? c : throw new ArgumentException($"'{sectionCounts}' is not a list of step counts")).ToArray();
        int sizePer = steps / counts.Length, extra = steps % counts.Length, start = 0;
        var all = new SortedSet<int>();
        for (var i = 0; i < counts.Length; i++)
        {
            var size = sizePer + (i < extra ? 1 : 0);
            if (size < counts[i]) throw new ArgumentException($"cannot divide a section of {size} steps into {counts[i]}");
            var stride = counts[i] <= 1 ? 1.0 : (size - 1) / (double)(counts[i] - 1);
            var position = 0.0;
            for (var k = 0; k < counts[i]; k++)
            {
                // Python's round() rounds halves to even, as Math.Round does by default.
                all.Add(start + (int)Math.Round(position));
                position += stride;
            }
            start += size;
        }
        return all;
    }

    /// <summary>
    /// <c>q_sample</c>: x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε.
    /// </summary>
    /// <param name="xStart">(N, …) clean samples.</param>
    /// <param name="t">(N) steps of this process.</param>
    /// <param name="noise">ε, shaped like <paramref name="xStart"/>.</param>
    public Tensor QSample(Tensor xStart, Tensor t, Tensor noise)
    {
        if (!noise.shape.SequenceEqual(xStart.shape)) throw new ArgumentException("noise must have the samples' shape");
        using var scope = NewDisposeScope();
        var result = Extract(sqrtAlphasCumprod, t, xStart) * xStart + Extract(sqrtOneMinusAlphasCumprod, t, xStart) * noise;
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <c>ddim_sample_loop</c> with η = 0 and <c>clip_denoised=False</c>: from x_T = <paramref name="noise"/>, each step
    /// predicts x₀ from the model's ε, re-derives ε from it and moves to ᾱ_{t−1} deterministically.
    /// </summary>
    /// <param name="model">Predicts ε from (x_t, base timesteps); called with <see cref="TimestepMap"/> applied.</param>
    /// <param name="noise">(N, …) starting noise.</param>
    /// <returns>(N, …) samples.</returns>
    public Tensor DdimSample(Func<Tensor, Tensor, Tensor> model, Tensor noise)
    {
        using var scope = NewDisposeScope();
        var x = noise;
        for (var i = NumTimesteps - 1; i >= 0; i--) x = DdimStep(model, x, i);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One step of <see cref="DdimSample"/>: from x at step <paramref name="i"/> of this process (counting down from
    /// <see cref="NumTimesteps"/> − 1) to x at step i − 1. Lets a caller interleave other work between steps with the
    /// same arithmetic as the whole loop.
    /// </summary>
    /// <remarks>
    /// A float32 state takes far fewer operations with the same numbers: every sample is at the same step, so each
    /// coefficient is one float32 value (the float64 table's value rounded to float32, as <see cref="Extract"/> gives it, and
    /// <c>sqrt</c>/<c>1 −</c> of it in float32 as the tensor ops compute them), passed as a scalar instead of a (N, 1, …)
    /// tensor built, gathered and cast at every step.
    /// </remarks>
    /// <returns>The next x, in the caller's dispose scope.</returns>
    public Tensor DdimStep(Func<Tensor, Tensor, Tensor> model, Tensor x, int i)
    {
        if (i < 0 || i >= NumTimesteps) throw new ArgumentOutOfRangeException(nameof(i), $"step {i} of a process of {NumTimesteps}");
        using var step = NewDisposeScope();
        if (x.dtype == ScalarType.Float32)
            return DdimUpdate(x, model(x, full(x.shape[0], (long)timestepMap[i], ScalarType.Int64, x.device)), i).MoveToOuterDisposeScope();
        using var map = tensor(timestepMap, device: x.device);
        var t = full(x.shape[0], i, ScalarType.Int64, x.device);                     // (N)
        var eps = model(x, map.index_select(0, t));                                 // (N, …)
        var recip = Extract(sqrtRecipAlphasCumprod, t, x);
        var recipm1 = Extract(sqrtRecipm1AlphasCumprod, t, x);
        var predXStart = recip * x - recipm1 * eps;
        // Upstream re-derives ε from x₀ (the model might predict x₀); kept for the same rounding.
        var epsAgain = (recip * x - predXStart) / recipm1;
        var alphaBarPrev = Extract(AlphasCumprodPrev, t, x);
        return (predXStart * alphaBarPrev.sqrt() + (1 - alphaBarPrev).sqrt() * epsAgain).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The float32 DDIM step from x at step <paramref name="i"/> given the model's ε̂ for it (see <see cref="DdimStep"/>):
    /// the arithmetic alone, for a caller that ran the model itself (prepared DiT passes, guidance on one state).
    /// </summary>
    /// <returns>The next x, in the caller's dispose scope.</returns>
    public Tensor DdimUpdate(Tensor x, Tensor epsF, int i)
    {
        if (i < 0 || i >= NumTimesteps) throw new ArgumentOutOfRangeException(nameof(i), $"step {i} of a process of {NumTimesteps}");
        if (x.dtype != ScalarType.Float32) throw new ArgumentException("the prepared DDIM update takes a float32 state");
        using var step = NewDisposeScope();
        var recipF = (float)sqrtRecipAlphasCumprod[i];
        var recipm1F = (float)sqrtRecipm1AlphasCumprod[i];
        var alphaBarPrevF = (float)AlphasCumprodPrev[i];
        var scaled = x * recipF;
        var predXStartF = scaled - epsF * recipm1F;
        // Upstream re-derives ε from x₀ (the model might predict x₀); kept for the same rounding.
        var epsAgainF = (scaled - predXStartF) / recipm1F;
        return (predXStartF * MathF.Sqrt(alphaBarPrevF) + epsAgainF * MathF.Sqrt(1f - alphaBarPrevF)).MoveToOuterDisposeScope();
    }

    /// <summary><c>_extract_into_tensor</c>: float64 values at steps t, as float32, shaped (N, 1, …) to broadcast over <paramref name="like"/>.</summary>
    private static Tensor Extract(double[] values, Tensor t, Tensor like)
    {
        using var table = tensor(values, device: t.device);
        var shape = new long[like.dim()];
        Array.Fill(shape, 1L);
        shape[0] = t.shape[0];
        return table.index_select(0, t).to(float32).view(shape);
    }
}
