using System.Diagnostics;
using Microsoft.Extensions.Logging;
using VlaCloud.Policy;
using VlaCloud.Telemetry;

namespace VlaCloud.Inference;

/// <summary>A request waiting for, or in, a batch.</summary>
internal sealed class WorkItem(InferenceRequest request, ModelCache.ModelLease lease, long enqueuedAt, ActivityContext parent)
{
    public InferenceRequest Request { get; } = request;
    public ModelCache.ModelLease Lease { get; } = lease;
    public long EnqueuedAt { get; } = enqueuedAt;
    public ActivityContext Parent { get; } = parent;
    public TaskCompletionSource<InferenceResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Requests batch together only with the same model, the same number of denoising steps and the same guidance scale.</summary>
    public (string Checkpoint, int? Steps, double? CfgScale) BatchKey => (Request.Checkpoint, Request.Steps, Request.CfgScale);
}

/// <summary>A batch that has started: its prefix is computed and its denoising steps are being taken.</summary>
internal sealed class Cohort(List<WorkItem> items, ActionSampling sampling, PointGuide[]? guides, long started, double pass)
{
    public List<WorkItem> Items { get; } = items;
    public ActionSampling Sampling { get; } = sampling;
    public PointGuide[]? Guides { get; } = guides;
    public long Started { get; } = started;
    public DateTimeOffset StartedAt { get; } = DateTimeOffset.UtcNow;

    /// <summary>Stride scheduling between batches in flight: the one with the smallest pass takes the next step.</summary>
    public double Pass { get; set; } = pass;

    /// <summary>What a step adds to <see cref="Pass"/>: its rows for the weight they pay with, so each weighted row gets steps at the same rate.</summary>
    public double Stride { get; } = items.Count / items.Sum(i => i.Request.Weight > 0 ? i.Request.Weight : 1);

    /// <summary>This batch's own compute so far (its prefix and steps, not the other batches' steps in between).</summary>
    public TimeSpan Compute { get; set; }
}

/// <summary>
/// One device's dedicated thread: it owns the device's models and batches. It slices batches between denoising steps:
/// a batch's prefix (vision, language, condition) runs when it starts, then the worker takes one denoising step at a time
/// of one of the batches in flight (stride scheduling: each weighted row gets steps at the same rate), and starts new
/// batches between steps, so a short request never waits for a long request's remaining steps. Each request finishes
/// when its own steps are done, with the same numbers as if its batch had run alone. The thread never awaits, so tensors
/// never cross threads; only plain arrays leave it.
/// </summary>
internal sealed class DeviceWorker : IDisposable
{
    private readonly object gate = new();
    private readonly List<WorkItem> pending = [];
    // Batches in flight; touched by the worker thread only.
    private readonly List<Cohort> inFlight = [];
    private readonly InferenceOptions options;
    private readonly Action<IReadOnlyCollection<InferenceRequest>> onDequeued;
    private readonly FairShare fair;
    private readonly ILogger logger;
    private readonly Thread thread;
    private bool stopping;

    // The size of the worker's previous batch; a start counts as one (idle), see InferenceOptions.IdleDispatch.
    private int lastBatchSize = 1;

    public DeviceWorker(string device, InferenceOptions options, ModelCache cache, Action<IReadOnlyCollection<InferenceRequest>> onDequeued, ILogger logger)
    {
        fair = new FairShare(options);
        Device = device;
        Cache = cache;
        this.options = options;
        this.onDequeued = onDequeued;
        this.logger = logger;
        batchesBySize = new long[Math.Max(1, options.MaxBatchSize) + 1];
        thread = new Thread(Run) { IsBackground = true, Name = $"vlacloud-inference-{device}" };
        thread.Start();
    }

    public string Device { get; }

    public ModelCache Cache { get; }

    /// <summary>Requests that went through a forward pass on this device.</summary>
    public long Computed => Interlocked.Read(ref computed);

    private long computed;

    /// <summary>Tensors alive on the worker thread after its last batch (a leak shows as growth).</summary>
    public long LiveTensors => Interlocked.Read(ref liveTensors);

    private long liveTensors;

    /// <summary>The worker thread's Linux thread id once it has started; 0 before, or where the platform does not say.</summary>
    public int OsThreadId => Volatile.Read(ref osThreadId);

    private int osThreadId;

    /// <summary>
    /// Batches started on this device by size: element n counts the batches of n requests (element 0 stays 0). Read
    /// without a lock, element by element, so a snapshot taken while the worker runs may be one batch behind.
    /// </summary>
    public long[] BatchesBySize
    {
        get
        {
            var copy = new long[batchesBySize.Length];
            for (var i = 0; i < copy.Length; i++) copy[i] = Interlocked.Read(ref batchesBySize[i]);
            return copy;
        }
    }

    // Index = batch size; sized for MaxBatchSize, larger batches (none are formed) would count in the last element.
    private readonly long[] batchesBySize;

    public int Pending
    {
        get { lock (gate) return pending.Count; }
    }

    public void Enqueue(WorkItem item)
    {
        lock (gate)
        {
            pending.Add(item);
            Monitor.Pulse(gate);
        }
    }

    private void Run()
    {
        Volatile.Write(ref osThreadId, CurrentOsThreadId());
        // The thread's first parallel operation adopts the process's thread count (TorchThreads) and, doing so, resets
        // oneDNN's cache; asking for the count here does that before the first batch instead of inside it.
        logger.LogInformation("Inference worker on {Device} runs libtorch on {Threads} threads", Device, TorchSharp.torch.get_num_threads());
        // Wait for work only when nothing is in flight; otherwise take what is waiting and go on stepping.
        while (TakeBatch(wait: inFlight.Count == 0) is { } batch)
        {
            if (batch.Count > 0) Start(batch);
            StepNext();
        }
        foreach (var cohort in inFlight)
        {
            foreach (var item in cohort.Items) item.Completion.TrySetCanceled();
            Release(cohort);
        }
        inFlight.Clear();
    }

    /// <summary>
    /// Waits for work, lets a lone request wait up to <see cref="InferenceOptions.MaxQueueDelay"/> for company (not when the
    /// worker is idle and <see cref="InferenceOptions.IdleDispatch"/> is on: then a lone request goes at once),
    /// drops expired and cancelled requests, then takes the next batch by weighted fair queueing between tenants
    /// (<see cref="FairShare"/>): the tenant that has received the least compute for its weight goes first, with its
    /// earliest-deadline request's model, and the batch is shared between the tenants waiting for that model.
    /// </summary>
    private List<WorkItem>? TakeBatch(bool wait)
    {
        List<WorkItem> dropped = [];
        List<WorkItem> batch;
        lock (gate)
        {
            while (true)
            {
                while (wait && pending.Count == 0 && !stopping) Monitor.Wait(gate);
                if (stopping) return null;
                if (pending.Count == 0 || !wait && inFlight.Count >= options.MaxInFlightBatches) return [];

                var oldest = pending.Min(i => i.EnqueuedAt);
                // Idle: nothing else waits and the previous batch was a lone request, so there is no load to wait for.
                var idle = options.IdleDispatch && pending.Count == 1 && lastBatchSize <= 1;
                // With batches in flight the worker does not hold a step back to wait for company: more arrive between steps.
                while (wait && !idle && pending.Count < options.MaxBatchSize && !stopping)
                {
                    var remaining = options.MaxQueueDelay - Stopwatch.GetElapsedTime(oldest);
                    if (remaining <= TimeSpan.Zero) break;
                    Monitor.Wait(gate, remaining);
                }

                var now = DateTimeOffset.UtcNow;
                dropped.AddRange(pending.Where(i => i.Completion.Task.IsCompleted || i.Request.Deadline <= now));
                pending.RemoveAll(dropped.Contains);
                if (pending.Count > 0 || dropped.Count > 0 || !wait) break;
            }

            // A tenant with MaxInFlightBatchesPerTenant batches in flight waits for one of them to finish, so its flood of
            // long requests cannot fill the device's batches in flight while another tenant's request waits.
            var busy = inFlight.SelectMany(c => c.Items.Select(i => i.Request.Tenant ?? "").Distinct())
                .GroupBy(t => t).Where(g => g.Count() >= options.MaxInFlightBatchesPerTenant).Select(g => g.Key).ToHashSet();
            batch = pending.Count == 0 ? [] : fair.TakeBatch(pending, busy.Count == 0 ? null : i => !busy.Contains(i.Request.Tenant ?? ""));
            if (batch.Count > 0)
            {
                pending.RemoveAll(batch.Contains);
                lastBatchSize = batch.Count;
            }
        }

        onDequeued([.. dropped.Concat(batch).Select(i => i.Request)]);
        foreach (var item in dropped)
        {
            // Cancelled ones are already completed; the rest expired before compute.
            if (item.Completion.TrySetException(new DeadlineExceededException(Stopwatch.GetElapsedTime(item.EnqueuedAt))))
                VlaCloudTelemetry.InferenceRequests.Add(1, new KeyValuePair<string, object?>(VlaCloudTelemetry.Tags.Outcome, "timeout"));
            item.Lease.Dispose();
        }
        return batch;
    }

    /// <summary>
    /// The calling thread's Linux thread id, read from <c>/proc/thread-self</c> (a link to <c>&lt;pid&gt;/task/&lt;tid&gt;</c>),
    /// so no native call is needed; 0 elsewhere.
    /// </summary>
    private static int CurrentOsThreadId()
    {
        if (!OperatingSystem.IsLinux()) return 0;
        try
        {
            var link = new FileInfo("/proc/thread-self").LinkTarget;
            return link is not null && int.TryParse(Path.GetFileName(link), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var tid) ? tid : 0;
        }
        catch (IOException)
        {
            return 0;
        }
        catch (UnauthorizedAccessException)
        {
            return 0;
        }
    }

    /// <summary>Starts a batch: its point guides if the model asks for them, its prefix and its noise; it joins the batches in flight.</summary>
    private void Start(List<WorkItem> batch)
    {
        var started = Stopwatch.GetTimestamp();
        var policy = batch[0].Lease.Policy;
        try
        {
            Interlocked.Add(ref computed, batch.Count);
            Interlocked.Increment(ref batchesBySize[Math.Min(batch.Count, batchesBySize.Length - 1)]);
            var observations = batch.Select(i => i.Request.Observation).ToList();
            // Asked here rather than inside the sampling so each response can say where its actions were aimed.
            var guides = policy.Config.PointGuidance ? policy.GeneratePointGuides(observations) : null;
            var sessions = batch.Any(i => i.Request.Session is not null) ? batch.Select(i => i.Request.Session).ToList() : null;
            var sampling = policy.StartSampling(observations, batch.Select(i => i.Request.Seed).ToList(), batch[0].Request.Steps, guides, batch[0].Request.CfgScale, sessions);
            // It joins level with the batch furthest behind, its prefix counted as one step, so it neither waits for the
            // others' passes nor overtakes them for long; a tenant starting batch after batch pays for each prefix.
            var cohort = new Cohort(batch, sampling, guides, started, inFlight.Count == 0 ? 0 : inFlight.Min(c => c.Pass));
            cohort.Pass += cohort.Stride;
            cohort.Compute = Stopwatch.GetElapsedTime(started);
            inFlight.Add(cohort);
        }
        catch (Exception e)
        {
            Fail(batch, e);
            foreach (var item in batch) item.Lease.Dispose();
        }
    }

    /// <summary>Takes one denoising step of the batch in flight with the smallest pass, and finishes it if that was its last.</summary>
    private void StepNext()
    {
        // A batch whose every request was cancelled (its callers went away) is not computed further.
        foreach (var abandoned in inFlight.Where(c => c.Items.All(i => i.Completion.Task.IsCompleted)).ToList())
        {
            inFlight.Remove(abandoned);
            Release(abandoned);
        }
        // On a tie the batch with fewer steps left goes first: it frees its callers (and its place) sooner.
        if (inFlight.OrderBy(c => c.Pass).ThenBy(c => c.Sampling.Steps - c.Sampling.Completed).FirstOrDefault() is not { } cohort) return;
        var started = Stopwatch.GetTimestamp();
        try
        {
            cohort.Sampling.Step();
            cohort.Pass += cohort.Stride;
            cohort.Compute += Stopwatch.GetElapsedTime(started);
            if (cohort.Sampling.Done) Finish(cohort);
        }
        catch (Exception e)
        {
            Fail(cohort.Items, e);
        }
        if (cohort.Sampling.Done || cohort.Items.All(i => i.Completion.Task.IsCompleted))
        {
            inFlight.Remove(cohort);
            Release(cohort);
        }
    }

    private void Finish(Cohort cohort)
    {
        var batch = cohort.Items;
        var policy = batch[0].Lease.Policy;
        var finishing = Stopwatch.GetTimestamp();
        using var activity = VlaCloudTelemetry.ActivitySource.StartActivity(
            "inference.batch", ActivityKind.Internal, parentContext: default, tags: null,
            links: batch.Select(i => new ActivityLink(i.Parent)), startTime: cohort.StartedAt);
        activity?.SetTag(VlaCloudTelemetry.Tags.Device, Device);
        activity?.SetTag(VlaCloudTelemetry.Tags.Checkpoint, batch[0].Request.Checkpoint);
        activity?.SetTag("vlacloud.batch.size", batch.Count);
        activity?.SetTag("vlacloud.batch.steps", cohort.Sampling.Steps);
        var actions = cohort.Sampling.Finish();
        var spatial = new SpatialPrediction?[batch.Count];
        foreach (var group in Enumerable.Range(0, batch.Count).Where(i => batch[i].Request.Spatial is not null).GroupBy(i => batch[i].Request.Spatial!.Value))
        {
            var indices = group.ToList();
            var answers = policy.GenerateSpatial(indices.Select(i => batch[i].Request.Observation).ToList(), group.Key);
            for (var j = 0; j < indices.Count; j++) spatial[indices[j]] = answers[j];
        }

        var compute = cohort.Compute + Stopwatch.GetElapsedTime(finishing);
        VlaCloudTelemetry.InferenceBatchSize.Record(batch.Count, new KeyValuePair<string, object?>(VlaCloudTelemetry.Tags.Device, Device));
        VlaCloudTelemetry.InferenceBatchDuration.Record(compute.TotalSeconds, new KeyValuePair<string, object?>(VlaCloudTelemetry.Tags.Device, Device));
        for (var i = 0; i < batch.Count; i++)
        {
            var queued = TimeSpan.FromTicks((long)((cohort.Started - batch[i].EnqueuedAt) * (double)TimeSpan.TicksPerSecond / Stopwatch.Frequency));
            VlaCloudTelemetry.InferenceQueueWait.Record(queued.TotalSeconds);
            if (batch[i].Completion.TrySetResult(new InferenceResult(actions[i], spatial[i], queued, compute, batch.Count, Device, cohort.Guides?[i])))
                VlaCloudTelemetry.InferenceRequests.Add(1, new KeyValuePair<string, object?>(VlaCloudTelemetry.Tags.Outcome, "ok"));
        }
    }

    private void Fail(List<WorkItem> batch, Exception e)
    {
        logger.LogError(e, "Inference batch of {Count} on {Device} failed", batch.Count, Device);
        foreach (var item in batch)
            if (item.Completion.TrySetException(e))
                VlaCloudTelemetry.InferenceRequests.Add(1, new KeyValuePair<string, object?>(VlaCloudTelemetry.Tags.Outcome, "error"));
    }

    /// <summary>Frees a batch's tensors and its model leases.</summary>
    private void Release(Cohort cohort)
    {
        cohort.Sampling.Dispose();
        foreach (var item in cohort.Items) item.Lease.Dispose();
        Interlocked.Exchange(ref liveTensors, TorchSharp.DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount);
    }

    public void Dispose()
    {
        lock (gate)
        {
            stopping = true;
            Monitor.PulseAll(gate);
        }
        thread.Join();
        lock (gate)
        {
            foreach (var item in pending)
            {
                item.Completion.TrySetCanceled();
                item.Lease.Dispose();
            }
            onDequeued([.. pending.Select(i => i.Request)]);
            pending.Clear();
        }
        Cache.Dispose();
    }
}

/// <summary>
/// Weighted fair queueing between tenants on one device (start-time fair queueing over virtual time). Each tenant has
/// a virtual time that grows by the cost of what it was served (requests × denoising steps) divided by its weight; the
/// tenant with the smallest virtual time is served next, and a tenant returning from idle starts at the current virtual
/// time, so it neither lost its turn nor saved up credit. Each batch is shared: every tenant waiting for the batch's
/// model gets up to its weighted share of the batch, and slots left over go to the earliest deadlines. A batch holds at
/// most <see cref="InferenceOptions.MaxBatchSize"/> requests and <see cref="InferenceOptions.MaxBatchSteps"/> steps. Within a tenant, earliest deadline first. With one tenant this is plain earliest-deadline batching.
/// </summary>
internal sealed class FairShare(InferenceOptions options)
{
    private readonly Dictionary<string, double> virtualTimes = [];
    private double now;

    /// <summary>
    /// Chooses, charges and returns the next batch out of <paramref name="pending"/> (which it does not change), from the
    /// requests <paramref name="eligible"/> allows (all when null); empty when it allows none.
    /// </summary>
    public List<WorkItem> TakeBatch(List<WorkItem> pending, Func<WorkItem, bool>? eligible = null)
    {
        var waiting = pending.Select(i => i.Request.Tenant ?? "").ToHashSet();
        if (eligible is not null) pending = [.. pending.Where(eligible)];
        if (pending.Count == 0) return [];
        var byTenant = pending.GroupBy(i => i.Request.Tenant ?? "").ToList();
        var next = byTenant
            .Select(g => (Tenant: g, Start: Math.Max(now, virtualTimes.GetValueOrDefault(g.Key, now)), Earliest: g.Min(i => i.Request.Deadline)))
            .OrderBy(t => t.Start).ThenBy(t => t.Earliest)
            .First();
        now = next.Start;
        var key = next.Tenant.MinBy(i => i.Request.Deadline)!.BatchKey;

        var groups = pending.Where(i => i.BatchKey == key).GroupBy(i => i.Request.Tenant ?? "")
            .Select(g => g.OrderBy(i => i.Request.Deadline).ToList()).ToList();
        var weights = groups.Sum(g => Weight(g[0]));
        var budget = options.MaxBatchSteps > 0 ? options.MaxBatchSteps : options.MaxBatchSize * options.NominalSteps;
        var size = Math.Clamp(budget / Math.Max(1, key.Steps ?? options.NominalSteps), 1, options.MaxBatchSize);
        var batch = new List<WorkItem>(size);
        var leftovers = new List<WorkItem>();
        foreach (var group in groups)
        {
            var share = Math.Max(1, (int)Math.Floor(size * Weight(group[0]) / weights));
            batch.AddRange(group.Take(share));
            leftovers.AddRange(group.Skip(share));
        }
        if (batch.Count > size)
        {
            // More tenants than slots: the ones furthest behind in virtual time come first.
            batch = [.. batch.OrderBy(i => virtualTimes.GetValueOrDefault(i.Request.Tenant ?? "", now)).ThenBy(i => i.Request.Deadline).Take(size)];
        }
        else
        {
            batch.AddRange(leftovers.OrderBy(i => i.Request.Deadline).Take(size - batch.Count));
        }

        foreach (var served in batch.GroupBy(i => i.Request.Tenant ?? ""))
        {
            var cost = served.Sum(i => (double)(i.Request.Steps ?? options.NominalSteps)) / Weight(served.First());
            virtualTimes[served.Key] = Math.Max(now, virtualTimes.GetValueOrDefault(served.Key, now)) + cost;
        }
        // A tenant that waits for nothing and is not ahead of the clock would restart at the clock anyway: forget it,
        // so the table holds only tenants with work or with a debt to wait out.
        foreach (var idle in virtualTimes.Where(v => v.Value <= now && !waiting.Contains(v.Key)).Select(v => v.Key).ToList())
            virtualTimes.Remove(idle);
        return batch;
    }

    private static double Weight(WorkItem item) => item.Request.Weight > 0 ? item.Request.Weight : 1;
}
