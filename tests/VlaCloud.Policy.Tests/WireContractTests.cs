using VlaCloud.Contracts;

namespace VlaCloud.Policy.Tests;

/// <summary>The model's spellings of wire values agree with the contracts clients use without loading the model.</summary>
public sealed class WireContractTests
{
    [Fact]
    public void Spatial_kinds_of_the_model_are_the_contracts()
    {
        Assert.Equal(SpatialKinds.All, SpatialPrompts.WireNames);
    }
}
