namespace VlaCloud.Policy.Tests;

public sealed class NormalizationTests
{
    [Fact]
    public void Q99_normalisation_maps_the_quantiles_to_plus_minus_one_and_is_undone_on_the_way_out()
    {
        var stats = TestData.Stats()[TestData.Arm];
        var x = new float[] { 0.5f, -1, 1, 0, 1.5f, -2, 1 };
        var y = stats.NormalizeAction(x);
        Assert.Equal(new[] { 0.5f, -1, 1, 0, 0.75f, -1, 1 }, y);
        var back = stats.UnnormalizeAction(y);
        for (var d = 0; d < 6; d++) Assert.Equal(x[d], back[d], 1e-5f);
        Assert.Equal(1f, back[6]);
    }

    [Fact]
    public void Values_beyond_the_quantiles_are_clamped_and_the_gripper_is_binary()
    {
        var stats = TestData.Stats()[TestData.Arm];
        var y = stats.NormalizeAction([5, -5, 0, 0, 0, 0, 0.2f]);
        Assert.Equal(1f, y[0]);
        Assert.Equal(-1f, y[1]);
        Assert.Equal(-1f, y[6]);
        Assert.Equal(0f, stats.UnnormalizeAction([0, 0, 0, 0, 0, 0, -0.01f])[6]);
    }

    [Fact]
    public void Statistics_computed_from_rows_give_quantiles_and_survive_json()
    {
        var rows = Enumerable.Range(0, 101).Select(i => new float[] { i, 2 * i, 7 }).ToList();
        var f = FeatureStats.Compute(rows);
        Assert.Equal(new[] { 1f, 2f, 7f }, f.Q01);
        Assert.Equal(new[] { 99f, 198f, 7f }, f.Q99);
        Assert.Equal(50f, f.Mean[0]);
        var stats = new NormalizationStats(f, Mode: NormalizationMode.MeanStd);
        Assert.Equal(0f, stats.NormalizeAction([1, 1, 7])[2]); // a constant dim does not divide by zero
        var back = NormalizationStats.FromJson(NormalizationStats.ToJson(new Dictionary<string, NormalizationStats> { ["a"] = stats }))["a"];
        Assert.Equal(NormalizationMode.MeanStd, back.Mode);
        Assert.Equal(f.Q99, back.Action.Q99);
    }
}
