using VlaCloud.Actions;
using static TorchSharp.torch;

namespace VlaCloud.Policy;

/// <summary>
/// <see cref="ActionChunk"/> to and from tensors: the model's edge, kept here so the chunk type itself needs no libtorch
/// (the simulator and the CLI use it without TorchSharp).
/// </summary>
public static class ActionChunkTensors
{
    /// <summary>The chunk as a float32 <c>(H, action_dim)</c> tensor on <paramref name="device"/> (CPU when null).</summary>
    public static Tensor ToTensor(this ActionChunk chunk, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        // TorchSharp copies from an array, not a span; the one copy here is that array.
        return tensor(chunk.Values.ToArray(), [chunk.Horizon, chunk.ActionDim], float32, device ?? CPU);
    }

    /// <summary>A chunk from a 2-D <c>(H, action_dim)</c> tensor of any float dtype, on any device (copied to the CPU).</summary>
    /// <exception cref="ArgumentException">The tensor is not 2-D or has no rows.</exception>
    public static ActionChunk FromTensor(Tensor actions)
    {
        ArgumentNullException.ThrowIfNull(actions);
        if (actions.dim() != 2) throw new ArgumentException($"an action chunk is (H, action_dim), got a {actions.dim()}-D tensor of shape [{string.Join(", ", actions.shape)}]", nameof(actions));
        using var scope = NewDisposeScope();
        var values = actions.to(float32).cpu().contiguous().data<float>();
        return ActionChunk.Create((int)actions.shape[0], (int)actions.shape[1], values, static (chunk, data) => data.CopyTo(chunk));
    }
}
