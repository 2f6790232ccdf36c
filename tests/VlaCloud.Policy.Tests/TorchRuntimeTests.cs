using TorchSharp;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Tests;

public sealed class TorchRuntimeTests
{
    [Fact]
    public void Libtorch_loads_and_computes_a_matrix_product()
    {
        using var scope = NewDisposeScope();
        var a = tensor(new float[] { 1, 2, 3, 4 }, [2, 2]);
        var b = tensor(new float[] { 5, 6, 7, 8 }, [2, 2]);
        Assert.Equal(new float[] { 19, 22, 43, 50 }, a.matmul(b).data<float>().ToArray());
    }

    [Fact]
    public void A_backward_pass_gives_the_analytic_gradient()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new float[] { 1, -2, 3 }, requires_grad: true);
        var loss = (x * x).sum() + x.sum(); // d/dx = 2x + 1
        loss.backward();
        Assert.Equal(new float[] { 3, -3, 7 }, x.grad!.data<float>().ToArray());
    }
}
