using VlaCloud.Policy;

namespace VlaCloud.Testing;

/// <summary>
/// The normalisation statistics tiny test policies are made with. Compiled into VlaCloud.Testing and linked as source
/// into the test projects below the host (Policy, Inference, Benchmarks), which would otherwise reference the API
/// through VlaCloud.Testing only to get this.
/// </summary>
public static class TestPolicies
{
    /// <summary>One feature's statistics that leave values in [-1, 1] as they are: mean 0, std 1, quantiles -1 and 1.</summary>
    public static FeatureStats IdentityFeature(int dim) =>
        new(new float[dim], Enumerable.Repeat(1f, dim).ToArray(), Enumerable.Repeat(-1f, dim).ToArray(), Enumerable.Repeat(1f, dim).ToArray());

    /// <summary>Identity statistics for an embodiment with <paramref name="actionDim"/> actions and <paramref name="stateDim"/> state values.</summary>
    public static NormalizationStats IdentityStats(int actionDim, int stateDim, int[]? binaryActionDims = null) =>
        new(IdentityFeature(actionDim), IdentityFeature(stateDim), BinaryActionDims: binaryActionDims);
}
