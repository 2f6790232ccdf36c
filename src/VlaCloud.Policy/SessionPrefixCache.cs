using System.Security.Cryptography;
using System.Text;
using static TorchSharp.torch;

namespace VlaCloud.Policy;

/// <summary>
/// Each session's last prefix (the family's condition for one observation, what sampling computes before its first
/// step), so a control loop that sends the same observation again skips the VLM. One entry per session, keyed by a
/// SHA-256 of what the prefix is computed from (every image's size and bytes, the instruction, the state and the
/// embodiment); a session whose observation changed misses and its entry is replaced. Least recently used sessions are
/// evicted past <see cref="Capacity"/>. The cached tensors belong to no dispose scope. Thread-safe, though a policy is
/// sampled by one worker.
/// </summary>
/// <remarks>
/// A prefix is only valid for the weights and statistics it was computed with. <see cref="Invalidate"/> (called by the
/// policy whenever either may have changed, see <see cref="VlaPolicy.WeightsChanged"/>) empties the cache and starts a
/// new <see cref="Generation"/>; a prefix is stored only with the generation read before it was computed, so one whose
/// computation straddled a change is dropped instead of outliving it.
/// </remarks>
internal sealed class SessionPrefixCache : IDisposable
{
    private readonly object gate = new();
    private readonly Dictionary<string, LinkedListNode<Entry>> entries = new(StringComparer.Ordinal);
    private readonly LinkedList<Entry> recency = new();   // most recently used first
    private int capacity;
    private long generation;

    private sealed record Entry(string Session, byte[] Key, Tensor Prefix);

    public SessionPrefixCache(int capacity) => Capacity = capacity;

    /// <summary>Sessions kept at most; 0 turns the cache off (and empties it).</summary>
    public int Capacity
    {
        get => capacity;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            lock (gate)
            {
                capacity = value;
                while (entries.Count > capacity) Evict();
            }
        }
    }

    /// <summary>Look-ups that found the session's prefix for the same observation.</summary>
    public long Hits { get; private set; }

    /// <summary>Bumped by every <see cref="Invalidate"/>: read it before computing a prefix and hand it to <see cref="Put"/>.</summary>
    public long Generation => Interlocked.Read(ref generation);

    /// <summary>Sessions held now.</summary>
    public int Count { get { lock (gate) return entries.Count; } }

    /// <summary>The key of an observation: SHA-256 of its images (sizes and bytes), instruction, state and embodiment.</summary>
    public static byte[] Key(Observation observation)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var number = new byte[8];
        void Int(long value) { BitConverter.TryWriteBytes(number, value); hash.AppendData(number); }
        void Text(string? value)
        {
            Int(value is null ? -1 : value.Length);
            if (value is not null) hash.AppendData(Encoding.UTF8.GetBytes(value));
        }
        Int(observation.Images.Count);
        foreach (var image in observation.Images)
        {
            Int(image.Width);
            Int(image.Height);
            Int(image.Rgb.Length);
            hash.AppendData(image.Rgb);
        }
        Text(observation.Instruction);
        Int(observation.State is null ? -1 : observation.State.Length);
        if (observation.State is { } state) hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(state.AsSpan()));
        Text(observation.Embodiment);
        return hash.GetHashAndReset();
    }

    /// <summary>The session's prefix if it was computed for the observation of <paramref name="key"/> (owned by the cache).</summary>
    public bool TryGet(string session, byte[] key, out Tensor prefix)
    {
        lock (gate)
        {
            if (capacity > 0 && entries.TryGetValue(session, out var node) && node.Value.Key.AsSpan().SequenceEqual(key))
            {
                recency.Remove(node);
                recency.AddFirst(node);
                Hits++;
                prefix = node.Value.Prefix;
                return true;
            }
            prefix = null!;
            return false;
        }
    }

    /// <summary>
    /// Keeps a copy of <paramref name="prefix"/> as the session's, replacing its previous one, unless the cache was
    /// invalidated since <paramref name="computedAt"/> (the <see cref="Generation"/> read before the prefix was computed).
    /// </summary>
    public void Put(string session, byte[] key, Tensor prefix, long computedAt)
    {
        lock (gate)
        {
            if (capacity == 0 || computedAt != generation) return;
            if (entries.Remove(session, out var old))
            {
                recency.Remove(old);
                old.Value.Prefix.Dispose();
            }
            // A copy, so the cache holds this sample's row and not the whole batch's storage.
            var copy = prefix.detach().clone().DetachFromDisposeScope();
            entries[session] = recency.AddFirst(new Entry(session, key, copy));
            while (entries.Count > capacity) Evict();
        }
    }

    /// <summary>Forgets every prefix and starts a new generation (the weights or statistics they were computed with changed).</summary>
    public void Invalidate()
    {
        lock (gate)
        {
            generation++;
            foreach (var entry in recency) entry.Prefix.Dispose();
            recency.Clear();
            entries.Clear();
        }
    }

    private void Evict()
    {
        var last = recency.Last!;
        recency.RemoveLast();
        entries.Remove(last.Value.Session);
        last.Value.Prefix.Dispose();
    }

    public void Dispose() => Invalidate();
}
