using System.Diagnostics;
using Microsoft.Extensions.Logging;
using VlaCloud.Policy;
using VlaCloud.Telemetry;

namespace VlaCloud.Inference;

/// <summary>What a model cache holds now.</summary>
/// <param name="Device">Its device.</param>
/// <param name="Models">Loaded models.</param>
/// <param name="Bytes">Their weights, bytes.</param>
/// <param name="Hits">Look-ups that found the model loaded (or loading).</param>
/// <param name="Misses">Look-ups that started a load.</param>
/// <param name="Loads">Loads that succeeded.</param>
/// <param name="Evictions">Models evicted for the memory budget.</param>
/// <param name="FailedLoads">Loads that failed.</param>
/// <param name="Refused">Look-ups refused from a remembered failure, without a load.</param>
/// <param name="PrefixHits">
/// Observations whose prefix came from their session's cache (<see cref="InferenceOptions.SessionPrefixes"/>), over the
/// models loaded now and those evicted before.
/// </param>
public sealed record ModelCacheStats(string Device, int Models, long Bytes, long Hits, long Misses, long Loads, long Evictions, long FailedLoads = 0, long Refused = 0,
    long PrefixHits = 0);

/// <summary>
/// The models of one device. Loads on demand, once per checkpoint however many requests ask at the same
/// time (single flight), warms each model up with one forward pass, and evicts the least recently used
/// models past a memory budget. A model in use by a batch is disposed only when its last lease ends.
/// A failed load is remembered (a circuit breaker per checkpoint): until its retry time, requests for that
/// checkpoint get the same <see cref="ModelLoadException"/> at once instead of loading it again each.
/// </summary>
internal sealed class ModelCache(string device, string dtype, long budgetBytes, ICheckpointSource source, ILogger logger, InferenceOptions? options = null) : IDisposable
{
    private readonly object gate = new();
    private readonly Dictionary<string, Entry> entries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Failure> failures = new(StringComparer.Ordinal);
    private readonly InferenceOptions settings = options ?? new InferenceOptions();
    private long hits, misses, loads, evictions, failedLoads, refused, clock;
    // Prefix hits of the models evicted so far (a loaded model counts its own).
    private long evictedPrefixHits;

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
                return new(device, loaded.Count, loaded.Sum(e => e.Bytes), hits, misses, loads, evictions, failedLoads, refused,
                    evictedPrefixHits + loaded.Sum(e => e.Policy!.PrefixHits));
            }
        }
    }

    /// <summary>A lease on the checkpoint's model, loading it first if needed. Dispose the lease when the request is done.</summary>
    public async Task<ModelLease> AcquireAsync(string checkpoint, CancellationToken cancellationToken)
    {
        Entry entry;
        lock (gate)
        {
            if (failures.TryGetValue(checkpoint, out var failure))
            {
                var wait = failure.RetryAt - DateTimeOffset.UtcNow;
                if (wait > TimeSpan.Zero)
                {
                    refused++;
                    VlaCloudTelemetry.ModelCacheLookups.Add(1, new KeyValuePair<string, object?>(VlaCloudTelemetry.Tags.Outcome, "refused"));
                    throw failure.Error.Remembered(wait);
                }
            }
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
            // The budget is checked from the config before the model is built: one model past it can never fit.
            var policy = await Task.Run(() =>
            {
                var loaded = VlaPolicy.Load(directory, device, dtype, maxWeightBytes: budgetBytes);
                try
                {
                    loaded.SessionPrefixes = settings.SessionPrefixes;
                    WarmUp(loaded);
                }
                catch
                {
                    loaded.Dispose();
                    throw;
                }
                return loaded;
            });
            var bytes = policy.ParameterCount * VlaPolicy.BytesPerWeight(dtype);
            lock (gate)
            {
                entry.Policy = policy;
                entry.Bytes = bytes;
                loads++;
                failures.Remove(entry.Checkpoint);
                EvictOverBudget(keep: entry);
            }
            logger.LogInformation("Loaded checkpoint {Checkpoint} on {Device} ({Parameters:N0} parameters) in {Elapsed} ms",
                entry.Checkpoint, device, policy.ParameterCount, stopwatch.ElapsedMilliseconds);
            return policy;
        }
        catch (Exception e)
        {
            var error = Classify(entry.Checkpoint, e);
            TimeSpan retryAfter;
            lock (gate)
            {
                if (entries.TryGetValue(entry.Checkpoint, out var current) && current == entry) entries.Remove(entry.Checkpoint);
                // Remembered, so the next requests do not each load again: a checkpoint that cannot be served for a long
                // while, a passing failure (the store did not answer) for a delay that doubles while it keeps failing.
                var count = failures.TryGetValue(entry.Checkpoint, out var previous) ? previous.Count + 1 : 1;
                retryAfter = error.Unservable
                    ? settings.UnservableRetryAfter
                    : TimeSpan.FromTicks(Math.Min(settings.FailedLoadMaxRetryAfter.Ticks, settings.FailedLoadRetryAfter.Ticks << Math.Min(count - 1, 20)));
                failures[entry.Checkpoint] = new Failure(error, DateTimeOffset.UtcNow + retryAfter, count);
                failedLoads++;
            }
            logger.LogWarning(e, "Loading checkpoint {Checkpoint} on {Device} failed ({Kind}); requests for it are refused for {RetryAfter}",
                entry.Checkpoint, device, error.Unservable ? "unservable" : "may pass", retryAfter);
            throw error.Remembered(retryAfter);
        }
    }

    /// <summary>
    /// Whether a load failure is the checkpoint's own (its content is invalid, corrupt or too large: 422, remembered long)
    /// or may pass (the store or the device failed: 503, retried after a delay).
    /// </summary>
    private static ModelLoadException Classify(string checkpoint, Exception e) => e switch
    {
        ModelLoadException known => known,
        CheckpointException or ArgumentException or InvalidDataException or System.Text.Json.JsonException =>
            new ModelLoadException(checkpoint, e.Message, e, unservable: true),
        _ => new ModelLoadException(checkpoint, e.Message, e),
    };

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
            evictedPrefixHits += victim.Policy!.PrefixHits;
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

    private sealed record Failure(ModelLoadException Error, DateTimeOffset RetryAt, int Count);

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
