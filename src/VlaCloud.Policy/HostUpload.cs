using TorchSharp;
using static TorchSharp.torch;

namespace VlaCloud.Policy;

/// <summary>
/// Moves a batch built on the host (images, states, token ids) to the policy's device. On a CUDA device the batch is
/// converted to its dtype on the host first (a bf16 batch crosses the bus at half the bytes), staged in page-locked
/// memory and copied asynchronously, so the copy overlaps with the kernels already queued on the stream. Page-locked
/// blocks come from libtorch's caching host allocator, which reuses them across batches and keeps a block alive until
/// the copy that reads it has finished; a plain <c>to(device)</c> would stage through a fresh pageable buffer and block.
/// On the CPU this is the same <c>to(dtype, device)</c> as before: nothing is pinned or copied twice.
/// </summary>
internal static class HostUpload
{
    /// <summary><paramref name="host"/> on <paramref name="device"/> in <paramref name="dtype"/> (its own dtype when null).</summary>
    public static Tensor ToDevice(Tensor host, Device device, ScalarType? dtype = null)
    {
        var type = dtype ?? host.dtype;
        if (device.type != DeviceType.CUDA || host.device_type != DeviceType.CPU) return host.to(type, device);
        using var converted = host.to(type);
        using var pinned = converted.pin_memory();
        return pinned.to(device, non_blocking: true);
    }
}
