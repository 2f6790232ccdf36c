using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TorchSharp;
using VlaCloud.Telemetry;
using VlaCloud.Policy;

namespace VlaCloud.Inference;

/// <summary>
/// Serves action requests of every client and tenant on a dedicated worker thread per device, batching
/// the requests of one checkpoint into one forward pass. The queue is bounded, and shared fairly between tenants: a
/// tenant past its share of it gets <see cref="TenantShareExceededException"/> at once (and only that tenant), a full
/// queue <see cref="EngineBusyException"/>, never a blocked thread; each device serves tenants by weighted fair
/// queueing (see <see cref="DeviceWorker"/>). A request whose deadline passes in the queue is dropped before compute.
/// </summary>
public sealed class InferenceEngine : IDisposable
{
    private readonly InferenceOptions options;
    private readonly DeviceWorker[] workers;
    private readonly object admission = new();
    // Per tenant: requests waiting and the weight they came with. Entries leave when a tenant has nothing waiting.
    private readonly Dictionary<string, (int Count, double Weight)> tenants = [];
    private int queued;

    /// <summary>Starts one worker per configured device.</summary>
    public InferenceEngine(IOptions<InferenceOptions> options, ICheckpointSource source, ILoggerFactory loggers)
    {
        this.options = options.Value;
        var logger = loggers.CreateLogger<InferenceEngine>();
        var devices = this.options.Devices is { Length: > 0 } configured ? configured : DiscoverDevices();
        // A dtype the devices cannot run fails the start, not every request's model load.
        foreach (var device in devices) VlaPolicy.CheckDtypeFor(device, this.options.DType);
        workers = devices
            .Select(device => new DeviceWorker(device, this.options,
                new ModelCache(device, this.options.DType, this.options.ModelMemoryBudgetBytes, source, logger, this.options),
                OnDequeued, logger))
            .ToArray();
        logger.LogInformation("Inference engine on {Devices}: batches of up to {MaxBatch}, queue of {Capacity}",
            string.Join(", ", devices), this.options.MaxBatchSize, this.options.QueueCapacity);
    }

    /// <summary>The devices that have a worker.</summary>
    public IReadOnlyList<string> Devices => workers.Select(w => w.Device).ToList();

    /// <summary>Requests waiting for a batch, over all devices.</summary>
    public int QueueDepth => Volatile.Read(ref queued);

    /// <summary>Requests that went through a forward pass (expired and cancelled ones never do).</summary>
    public long ComputedRequests => workers.Sum(w => w.Computed);

    /// <summary>Tensors alive on the worker threads after their last batch; flat over time unless something leaks.</summary>
    public long LiveTensors => workers.Sum(w => w.LiveTensors);

    /// <summary>
    /// The operating system's thread ids (Linux <c>tid</c>s) of the device workers' threads, for a benchmark or profiler
    /// to tell the forward's CPU time from the rest of the process (<c>/proc/self/task/&lt;tid&gt;/stat</c>). Empty where
    /// the platform does not say (not Linux) or before the threads have started.
    /// </summary>
    public IReadOnlyList<int> WorkerOsThreadIds => workers.Select(w => w.OsThreadId).Where(id => id > 0).ToList();

    /// <summary>
    /// Batches started so far by size, over all devices: element n counts the batches of n requests (element 0 is always
    /// 0; the list has <see cref="InferenceOptions.MaxBatchSize"/> + 1 elements). The difference of two snapshots is the
    /// batch-size distribution the workers formed in between, e.g. for a benchmark to run the raw model at the same
    /// batch sizes, or to see what batching a load actually gets.
    /// </summary>
    public IReadOnlyList<long> BatchesBySize
    {
        get
        {
            var total = new long[Math.Max(1, options.MaxBatchSize) + 1];
            foreach (var worker in workers)
            {
                var counts = worker.BatchesBySize;
                for (var i = 0; i < counts.Length && i < total.Length; i++) total[i] += counts[i];
            }
            return total;
        }
    }

    /// <summary>Each device's model cache.</summary>
    public IReadOnlyList<ModelCacheStats> CacheStats => workers.Select(w => w.Cache.Stats).ToList();

    /// <summary>
    /// Computes the request's action chunk in a batch with others.
    /// </summary>
    /// <exception cref="EngineBusyException">The queue is full; nothing was computed.</exception>
    /// <exception cref="DeadlineExceededException">The deadline passed before the request's batch started.</exception>
    /// <exception cref="ModelLoadException">The checkpoint cannot be loaded.</exception>
    /// <exception cref="ArgumentException">The observation does not fit the model (e.g. wrong state size).</exception>
    public async Task<InferenceResult> RunAsync(InferenceRequest request, CancellationToken cancellationToken)
    {
        Admit(request);
        VlaCloudTelemetry.InferenceQueueDepth.Add(1);
        var enqueued = false;
        try
        {
            var worker = Route(request.Checkpoint);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var remaining = request.Deadline - DateTimeOffset.UtcNow;
            if (remaining <= TimeSpan.Zero) throw new DeadlineExceededException(TimeSpan.Zero);
            timeout.CancelAfter(remaining);
            ModelCache.ModelLease lease;
            try
            {
                lease = await worker.Cache.AcquireAsync(request.Checkpoint, timeout.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new DeadlineExceededException(remaining);
            }

            var item = new WorkItem(request, lease, Stopwatch.GetTimestamp(), Activity.Current?.Context ?? default);
            await using var registration = cancellationToken.Register(() => item.Completion.TrySetCanceled(cancellationToken));
            worker.Enqueue(item);
            enqueued = true;
            return await item.Completion.Task;
        }
        finally
        {
            if (!enqueued) OnDequeued([request]);
        }
    }

    /// <summary>Requests of <paramref name="tenant"/> waiting for a batch, over all devices.</summary>
    public int TenantQueueDepth(string? tenant)
    {
        lock (admission) return tenants.TryGetValue(tenant ?? "", out var entry) ? entry.Count : 0;
    }

    /// <summary>
    /// Counts the request in, or refuses it: its tenant past <see cref="InferenceOptions.MaxQueuedPerTenant"/>, or holding at
    /// least its weighted share of a full queue that other tenants wait in too, is refused alone (429); a tenant below its
    /// share, or alone in a full queue, gets 503.
    /// </summary>
    private void Admit(InferenceRequest request)
    {
        var tenant = request.Tenant ?? "";
        var weight = request.Weight > 0 ? request.Weight : 1;
        lock (admission)
        {
            var mine = tenants.TryGetValue(tenant, out var entry) ? entry.Count : 0;
            if (mine >= options.MaxQueuedPerTenant) throw Refused(new TenantShareExceededException(mine, options.MaxQueuedPerTenant, RetryAfter), "share_exceeded");
            if (queued >= options.QueueCapacity)
            {
                // Full. With other tenants waiting, the one holding at least its weighted share of the queue is the one
                // refused; alone, a tenant simply found the service saturated.
                var others = tenants.Where(t => t.Key != tenant).Sum(t => t.Value.Weight);
                var share = (int)Math.Max(1, Math.Floor(options.QueueCapacity * weight / (others + weight)));
                if (others > 0 && mine >= share) throw Refused(new TenantShareExceededException(mine, share, RetryAfter), "share_exceeded");
                throw Refused(new EngineBusyException(RetryAfter), "rejected");
            }
            tenants[tenant] = (mine + 1, weight);
            queued++;
        }
    }

    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(1);

    private static Exception Refused(Exception refusal, string outcome)
    {
        VlaCloudTelemetry.InferenceRequests.Add(1, new KeyValuePair<string, object?>(VlaCloudTelemetry.Tags.Outcome, outcome));
        return refusal;
    }

    private void OnDequeued(IReadOnlyCollection<InferenceRequest> requests)
    {
        if (requests.Count == 0) return;
        lock (admission)
        {
            foreach (var request in requests)
            {
                var tenant = request.Tenant ?? "";
                if (!tenants.TryGetValue(tenant, out var entry)) continue;
                if (entry.Count <= 1) tenants.Remove(tenant);
                else tenants[tenant] = (entry.Count - 1, entry.Weight);
            }
            queued -= requests.Count;
        }
        VlaCloudTelemetry.InferenceQueueDepth.Add(-requests.Count);
    }

    /// <summary>A device that holds the model if any does (no second copy), else the least busy one.</summary>
    private DeviceWorker Route(string checkpoint) =>
        workers.Where(w => w.Cache.Holds(checkpoint)).MinBy(w => w.Pending) ?? workers.MinBy(w => w.Pending)!;

    private static string[] DiscoverDevices() =>
        torch.cuda.is_available()
            ? Enumerable.Range(0, torch.cuda.device_count()).Select(i => $"cuda:{i}").ToArray()
            : ["cpu"];

    /// <summary>Stops the workers; waiting requests are cancelled.</summary>
    public void Dispose()
    {
        foreach (var worker in workers) worker.Dispose();
    }
}
