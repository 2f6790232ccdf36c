using VlaCloud.Actions;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Tests;

public sealed class ActionChunkTensorsTests
{
    [Fact]
    public void A_chunk_becomes_an_h_by_dim_float32_tensor_and_comes_back_unchanged()
    {
        var chunk = new ActionChunk(3, 2, [0f, 1f, 10f, 11f, 20f, -21.5f]);
        using var scope = NewDisposeScope();

        var t = chunk.ToTensor();
        Assert.Equal([3L, 2L], t.shape);
        Assert.Equal(ScalarType.Float32, t.dtype);
        Assert.Equal(-21.5f, t[2, 1].item<float>());   // row-major: step 2, dimension 1

        var back = ActionChunkTensors.FromTensor(t);
        Assert.Equal((3, 2), (back.Horizon, back.ActionDim));
        Assert.Equal(chunk.Values.ToArray(), back.Values.ToArray());
    }

    [Fact]
    public void A_strided_or_half_precision_tensor_is_read_in_logical_order()
    {
        using var scope = NewDisposeScope();
        // (2, 3) transposed to (3, 2): not contiguous, so its storage order is not the chunk's order.
        var transposed = tensor(new float[] { 0, 10, 20, 1, 11, 21 }, [2, 3]).t().to(bfloat16);

        var chunk = ActionChunkTensors.FromTensor(transposed);
        Assert.Equal((3, 2), (chunk.Horizon, chunk.ActionDim));
        Assert.Equal([0f, 1f, 10f, 11f, 20f, 21f], chunk.Values.ToArray());
    }

    [Fact]
    public void Only_a_two_dimensional_tensor_with_steps_is_a_chunk()
    {
        using var scope = NewDisposeScope();
        Assert.Throws<ArgumentException>(() => ActionChunkTensors.FromTensor(zeros(2, 3, 4)));
        Assert.Throws<ArgumentOutOfRangeException>(() => ActionChunkTensors.FromTensor(zeros(0, 3)));
    }
}
