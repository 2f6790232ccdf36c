using System.Diagnostics;
using Microsoft.Extensions.Logging;
using VlaCloud.Policy;
using VlaCloud.Registry.Telemetry;

namespace VlaCloud.Inference;

/// <summary>What a model cache holds now.</summary>
/// <param name="Device">Its device.</param>
/// <param name="Models">Loaded models.</param>
/// <param name="Bytes">Their weights, bytes.</param>
/// <param name="Hits">Look-ups that found the model loaded (or loading).</param>
/// <param name="Misses">Look-ups that started a load.</param>
/// <param name="Loads">Loads that succeeded.</param>
/// <param name="Evictions">Models evicted for the memory budget.</param>
public sealed record ModelCacheStats(string Device, int Models, long Bytes, long Hits, long Misses, long Loads, long Evictions);

/// <summary>
/// The models of one device. Loads on demand, once per checkpoint however many requests ask at the same
/// time (single flight), warms each model up with one forward pass, and evicts the least recently used
/// models past a memory budget. A model in use by a batch is disposed only when its last lease ends.
/// </summary>
internal sealed class ModelCache(string device, string dtype, long budgetBytes, ICheckpointSource source, ILogger logger) : IDisposable
{
    private readonly object gate = new();
    private readonly Dictionary<string, Entry> entries = new(StringComparer.Ordinal);
    private long hits, misses, loads, evictions, clock;

    public string Device => device;

    /// <summary>Whether the checkpoint is loaded or loading here (routing prefers such a device).</summary>
    public bool Holds(string checkpoint)
    {
        lock (gate) return entries.ContainsKey(checkpoint);
    }

    public ModelCacheStats Stats
    {
        get
        {
            lock (gate)
            {
                var loaded = entries.Values.Where(e => e.Policy is not null).ToList();
                return new(device, loaded.Count, loaded.Sum(e => e.Bytes), hits, misses, loads, evictions);
            }
        }
    }

    /// <summary>A lease on the checkpoint's model, loading it first if needed. Dispose the lease when the request is done.</summary>
    public async Task<ModelLease> AcquireAsync(string checkpoint, CancellationToken cancellationToken)
    {
        Entry entry;
        lock (gate)
        {
            if (entries.TryGetValue(checkpoint, out var existing))
            {
                entry = existing;
                hits++;
                VlaCloudTelemetry.ModelCacheLookups.Add(1, new KeyValuePair<string, object?>(VlaCloudTelemetry.Tags.Outcome, "hit"));
            }
            else
            {
                entry = new Entry(checkpoint);
                entry.Load = LoadAsync(entry);
                entries[checkpoint] = entry;
                misses++;
                VlaCloudTelemetry.ModelCacheLookups.Add(1, new KeyValuePair<string, object?>(VlaCloudTelemetry.Tags.Outcome, "miss"));
            }
            entry.Leases++;
            entry.LastUse = ++clock;
        }
        try
        {
            var policy = await entry.Load!.WaitAsync(cancellationToken);
            return new ModelLease(this, entry, policy);
        }
        catch
        {
            Release(entry);
            throw;
        }
    }

    private async Task<VlaPolicy> LoadAsync(Entry entry)
    {
        // Let the caller's lock go before doing any work.
        await Task.Yield();
        using var activity = VlaCloudTelemetry.ActivitySource.StartActivity("model.load");
        activity?.SetTag(VlaCloudTelemetry.Tags.Checkpoint, entry.Checkpoint);
        activity?.SetTag(VlaCloudTelemetry.Tags.Device, device);
        var stopwatch = Stopwatch.StartNew();
        try
        {
            var directory = await source.GetDirectoryAsync(entry.Checkpoint, CancellationToken.None);
            // Loading and warm-up are synchronous tensor work: keep them on one pool thread, off the callers.
            var policy = await Task.Run(() =>
            {
                var loaded = VlaPolicy.Load(directory, device, dtype);
                WarmUp(loaded);
                return loaded;
            });
            var bytes = policy.ParameterCount * (dtype == "bf16" ? 2 : 4);
            lock (gate)
            {
                entry.Policy = policy;
                entry.Bytes = bytes;
                loads++;
                EvictOverBudget(keep: entry);
            }
            logger.LogInformation("Loaded checkpoint {Checkpoint} on {Device} ({Parameters:N0} parameters) in {Elapsed} ms",
                entry.Checkpoint, device, policy.ParameterCount, stopwatch.ElapsedMilliseconds);
            return policy;
        }
        catch (Exception e)
        {
            lock (gate)
            {
                // A failed load must not stick: the next request tries again (the artifact may be fixed).
                if (entries.TryGetValue(entry.Checkpoint, out var current) && current == entry) entries.Remove(entry.Checkpoint);
            }
            logger.LogWarning(e, "Loading checkpoint {Checkpoint} on {Device} failed", entry.Checkpoint, device);
            throw e as ModelLoadException ?? new ModelLoadException(entry.Checkpoint, e.Message, e);
        }
    }

    /// <summary>One forward pass at load, so the first real request does not pay for lazy initialisation.</summary>
    private static void WarmUp(VlaPolicy policy)
    {
        var (embodiment, stats) = policy.Normalization.First();
        var side = policy.Config.ImageSize;
        var image = new CameraImage(new byte[side * side * 3], side, side);
        var state = stats.StateDim > 0 ? new float[stats.StateDim] : null;
        policy.SampleActions([new Observation([image], "warm up", state, embodiment)], [0], steps: 1);
    }

    private void EvictOverBudget(Entry keep)
    {
        var total = entries.Values.Sum(e => e.Bytes);
        foreach (var victim in entries.Values.Where(e => e != keep && e.Policy is not null).OrderBy(e => e.LastUse).ToList())
        {
            if (total <= budgetBytes) break;
            entries.Remove(victim.Checkpoint);
            victim.Evicted = true;
            total -= victim.Bytes;
            evictions++;
            VlaCloudTelemetry.ModelCacheEvictions.Add(1);
            logger.LogInformation("Evicted checkpoint {Checkpoint} from {Device} to stay within {Budget} bytes", victim.Checkpoint, device, budgetBytes);
            if (victim.Leases == 0) victim.Policy!.Dispose();
        }
    }

    private void Release(Entry entry)
    {
        lock (gate)
        {
            entry.Leases--;
            if (entry.Evicted && entry.Leases == 0) entry.Policy?.Dispose();
        }
    }

    public void Dispose()
    {
        lock (gate)
        {
            foreach (var entry in entries.Values) entry.Policy?.Dispose();
            entries.Clear();
        }
    }

    internal sealed class Entry(string checkpoint)
    {
        public string Checkpoint { get; } = checkpoint;
        public Task<VlaPolicy>? Load { get; set; }
        public VlaPolicy? Policy { get; set; }
        public long Bytes { get; set; }
        public long LastUse { get; set; }
        public int Leases { get; set; }
        public bool Evicted { get; set; }
    }

    /// <summary>Keeps a model alive while one request uses it.</summary>
    internal sealed class ModelLease(ModelCache cache, Entry entry, VlaPolicy policy) : IDisposable
    {
        private int disposed;

        public VlaPolicy Policy { get; } = policy;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) == 0) cache.Release(entry);
        }
    }
}
