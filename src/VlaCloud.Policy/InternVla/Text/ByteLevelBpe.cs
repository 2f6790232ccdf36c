using System.Collections.Concurrent;
using System.Text;

namespace VlaCloud.Policy.InternVla.Text;

/// <summary>
/// GPT-2 style byte-level BPE over a vocabulary and ranked merges (transformers' <c>bytes_to_unicode</c> and
/// <c>bpe</c>). Upstream repeatedly merges every occurrence of the lowest-ranked adjacent pair, which is quadratic in
/// a word's length; here a heap of candidate pairs ordered by (rank, position) gives the same merges in
/// O(n log n): a rank names one pair, a merge never recreates the pair it consumed, and the heap takes the leftmost
/// occurrence first, as upstream's left-to-right pass does. A popped candidate is current when its position still
/// holds a pair of that rank (a position's pair can only change to one of another rank).
/// </summary>
internal sealed class ByteLevelBpe
{
    /// <summary>Words up to this many characters are cached (long words are rare and would crowd the cache).</summary>
    private const int MaxCachedWordLength = 48;

    private readonly int[] byteIds = new int[256];
    private readonly Dictionary<long, (int Rank, int Merged)> merges;
    private readonly ConcurrentDictionary<string, int[]> cache = new(StringComparer.Ordinal);
    private readonly int cacheCapacity;

    /// <summary>The printable character GPT-2's byte-level alphabet uses for each byte.</summary>
    public static IReadOnlyList<char> ByteToChar { get; } = BuildByteToChar();

    /// <summary>The byte each character of the byte-level alphabet stands for.</summary>
    public static IReadOnlyDictionary<char, byte> CharToByte { get; } =
        Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    /// <summary>Builds the model; every byte character, merge part and merge result must be in the vocabulary.</summary>
    public ByteLevelBpe(IReadOnlyDictionary<string, int> vocab, IEnumerable<(string Left, string Right)> rankedMerges, int cacheCapacity)
    {
        this.cacheCapacity = cacheCapacity;
        for (var b = 0; b < 256; b++)
            byteIds[b] = vocab.TryGetValue(ByteToChar[b].ToString(), out var id) ? id
                : throw new InvalidDataException($"vocab.json lacks the byte-level token for byte 0x{b:X2} ('{ByteToChar[b]}')");
        merges = new Dictionary<long, (int Rank, int Merged)>(PairComparer.Instance);
        var rank = 0;
        foreach (var (left, right) in rankedMerges)
        {
            if (!vocab.TryGetValue(left, out var l) || !vocab.TryGetValue(right, out var r) || !vocab.TryGetValue(left + right, out var merged))
                throw new InvalidDataException($"merge {rank} '{left} {right}' names a token missing from vocab.json");
            // A repeated merge takes its later rank, as upstream's dict(zip(merges, range(...))) does.
            merges[Key(l, r)] = (rank, merged);
            rank++;
        }
    }

    /// <summary>Words cached now.</summary>
    public int CachedWords => cache.Count;

    /// <summary>Appends the ids of one pre-tokenised piece (text before byte mapping).</summary>
    public void Encode(string piece, List<int> ids)
    {
        if (cache.TryGetValue(piece, out var cached))
        {
            ids.AddRange(cached);
            return;
        }
        var bytes = Encoding.UTF8.GetBytes(piece);
        var result = Merge(bytes);
        if (piece.Length <= MaxCachedWordLength && cache.Count < cacheCapacity) cache.TryAdd(piece, result);
        ids.AddRange(result);
    }

    private int[] Merge(byte[] bytes)
    {
        var n = bytes.Length;
        if (n == 0) return [];
        var symbols = new int[n];
        var next = new int[n];
        var prev = new int[n];
        for (var i = 0; i < n; i++)
        {
            symbols[i] = byteIds[bytes[i]];
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
        }
        // Candidates as (rank << 32 | left position); a stale one (its pair changed since) is dropped when popped.
        var heap = new MinHeap(n);
        void Offer(int left)
        {
            var right = next[left];
            if (right >= 0 && merges.TryGetValue(Key(symbols[left], symbols[right]), out var m)) heap.Push(((long)m.Rank << 32) | (uint)left);
        }
        for (var i = 0; i + 1 < n; i++) Offer(i);

        var alive = n;
        while (heap.TryPop(out var candidate))
        {
            var left = (int)candidate;
            var right = next[left];
            if (symbols[left] < 0 || right < 0 || !merges.TryGetValue(Key(symbols[left], symbols[right]), out var m) || m.Rank != (int)(candidate >> 32)) continue;
            symbols[left] = m.Merged;
            symbols[right] = -1;
            next[left] = next[right];
            if (next[right] >= 0) prev[next[right]] = left;
            alive--;
            if (prev[left] >= 0) Offer(prev[left]);
            Offer(left);
        }

        var result = new int[alive];
        for (int i = 0, k = 0; i >= 0; i = next[i]) result[k++] = symbols[i];
        return result;
    }

    /// <summary>A binary min-heap of longs: smaller and faster than a general priority queue for millions of entries.</summary>
    private sealed class MinHeap(int capacity)
    {
        private long[] items = new long[Math.Max(capacity, 4)];
        private int count;

        public void Push(long value)
        {
            if (count == items.Length) Array.Resize(ref items, items.Length * 2);
            var i = count++;
            while (i > 0)
            {
                var parent = (i - 1) >> 1;
                if (items[parent] <= value) break;
                items[i] = items[parent];
                i = parent;
            }
            items[i] = value;
        }

        public bool TryPop(out long value)
        {
            if (count == 0)
            {
                value = 0;
                return false;
            }
            value = items[0];
            var last = items[--count];
            var i = 0;
            while (true)
            {
                var child = 2 * i + 1;
                if (child >= count) break;
                if (child + 1 < count && items[child + 1] < items[child]) child++;
                if (items[child] >= last) break;
                items[i] = items[child];
                i = child;
            }
            items[i] = last;
            return true;
        }
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>
    /// Hashes a pair key by multiplication: long's own hash XORs the halves, which sends every (x, x) pair (runs of one
    /// character, the hostile case) and many others to one bucket.
    /// </summary>
    private sealed class PairComparer : IEqualityComparer<long>
    {
        public static PairComparer Instance { get; } = new();

        public bool Equals(long x, long y) => x == y;

        public int GetHashCode(long key) => (int)(((ulong)key * 0x9E3779B97F4A7C15UL) >> 32);
    }

    private static char[] BuildByteToChar()
    {
        // transformers' bytes_to_unicode: printable Latin-1 bytes stand for themselves, the rest move to 256 + n.
        var map = new char[256];
        var n = 0;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)(256 + n++);
        }
        return map;
    }
}
