using TorchSharp;

namespace VlaCloud.Inference.Tests;

public sealed class TorchThreadsTests
{
    // These never change the count: other tests of the process compute meanwhile, which is exactly when changing it is
    // unsafe. Applying the count already in effect is a no-op, and a refused change never reaches libtorch.

    [Fact]
    public void Unset_leaves_libtorch_s_default_and_reports_it()
    {
        Assert.Equal(torch.get_num_threads(), TorchThreads.Apply(null));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(TorchThreads.Max + 1)]
    public void A_count_outside_1_to_the_maximum_is_refused_with_the_setting_s_name(int threads)
    {
        var before = torch.get_num_threads();
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => TorchThreads.Apply(threads));
        Assert.Contains("VlaCloud:Inference:TorchThreads", error.Message);
        Assert.Equal(before, torch.get_num_threads());
    }

    [Fact]
    public void Once_set_the_count_can_be_applied_again_but_not_changed()
    {
        var current = torch.get_num_threads();
        Assert.Equal(current, TorchThreads.Apply(current));
        Assert.Equal(current, TorchThreads.Apply(current));

        var error = Assert.Throws<InvalidOperationException>(() => TorchThreads.Apply(current + 1));
        Assert.Contains($"already runs {current} threads", error.Message);
        Assert.Equal(current, torch.get_num_threads());
    }
}
