using TorchSharp;

namespace VlaCloud.Inference;

/// <summary>
/// The process's libtorch intra-op thread count (<see cref="InferenceOptions.TorchThreads"/>), set once at startup.
/// </summary>
/// <remarks>
/// <c>at::set_num_threads</c> is process-wide: besides the calling thread's OpenMP count it stores a global that every
/// other thread adopts at its first parallel operation, resizes the pthreadpool and clears oneDNN's primitive cache.
/// Changed while another thread computes, that is a use-after-free risk (a per-call cap crashed the serving benchmark),
/// so it is set before any model is built or any worker runs, and never changed afterwards.
/// </remarks>
public static class TorchThreads
{
    /// <summary>The largest count accepted; far above any machine's cores, it only rejects typos.</summary>
    public const int Max = 1024;

    private static readonly object Gate = new();
    private static int? applied;

    /// <summary>
    /// Sets the intra-op thread count to <paramref name="threads"/> unless it is null (libtorch's default: one per core,
    /// or <c>OMP_NUM_THREADS</c>). Calling it again with the same count (another host in the same process) does nothing.
    /// </summary>
    /// <returns>The count in effect on the calling thread.</returns>
    /// <exception cref="ArgumentOutOfRangeException">Not between 1 and <see cref="Max"/>.</exception>
    /// <exception cref="InvalidOperationException">A different count was already set in this process.</exception>
    public static int Apply(int? threads)
    {
        if (threads is not { } n) return torch.get_num_threads();
        if (n is < 1 or > Max)
            throw new ArgumentOutOfRangeException(nameof(threads), n, $"{InferenceOptions.Section}:TorchThreads must be between 1 and {Max}");
        lock (Gate)
        {
            if (applied is { } previous && previous != n)
                throw new InvalidOperationException($"libtorch already runs {previous} threads in this process; {InferenceOptions.Section}:TorchThreads cannot change to {n} while it runs");
            // Only set when it differs: a redundant set still clears oneDNN's cache under whoever is computing.
            if (torch.get_num_threads() != n) torch.set_num_threads(n);
            applied = n;
            return n;
        }
    }
}
