using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TorchSharp;
using VlaCloud.Registry.Telemetry;

namespace VlaCloud.Inference;

/// <summary>
/// Serves action requests of every client and tenant on a dedicated worker thread per device, batching
/// the requests of one checkpoint into one forward pass. The queue is bounded: when it is full a caller
/// gets <see cref="EngineBusyException"/> at once, never a blocked thread; a request whose deadline passes
/// in the queue is dropped before compute.
/// </summary>
public sealed class InferenceEngine : IDisposable
{
    private readonly InferenceOptions options;
    private readonly DeviceWorker[] workers;
    private int queued;

    /// <summary>Starts one worker per configured device.</summary>
    public InferenceEngine(IOptions<InferenceOptions> options, ICheckpointSource source, ILoggerFactory loggers)
    {
        this.options = options.Value;
        var logger = loggers.CreateLogger<InferenceEngine>();
        var devices = this.options.Devices is { Length: > 0 } configured ? configured : DiscoverDevices();
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
        if (Interlocked.Increment(ref queued) > options.QueueCapacity)
        {
            Interlocked.Decrement(ref queued);
            VlaCloudTelemetry.InferenceRequests.Add(1, new KeyValuePair<string, object?>(VlaCloudTelemetry.Tags.Outcome, "rejected"));
            throw new EngineBusyException(TimeSpan.FromSeconds(1));
        }
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
            if (!enqueued) OnDequeued(1);
        }
    }

    private void OnDequeued(int count)
    {
        if (count == 0) return;
        Interlocked.Add(ref queued, -count);
        VlaCloudTelemetry.InferenceQueueDepth.Add(-count);
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
