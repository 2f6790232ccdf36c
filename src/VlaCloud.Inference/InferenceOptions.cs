namespace VlaCloud.Inference;

/// <summary>How the engine batches and where it runs; bound from <c>VlaCloud:Inference</c>.</summary>
public sealed class InferenceOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "VlaCloud:Inference";

    /// <summary>Devices with one worker thread each: <c>cpu</c>, <c>cuda:0</c>, <c>cuda:1</c>… Empty: every CUDA device, else the CPU.</summary>
    public string[] Devices { get; set; } = [];

    /// <summary>Weights dtype on the devices: <c>fp32</c>, <c>bf16</c> or <c>fp16</c> (CUDA devices only; checked at start).</summary>
    public string DType { get; set; } = "fp32";

    /// <summary>
    /// libtorch's intra-op threads for the whole process (inference and training alike), set once at startup before any
    /// model is loaded; unset: libtorch's default (one per core, or <c>OMP_NUM_THREADS</c>). A small model's batch-1
    /// forward is per-operation overhead, which every extra thread's wake-up adds to (the tiny model: ~6 ms at 1 thread,
    /// ~21 ms at 2), so 1 suits small models on small machines; large models and batches gain from more.
    /// See <see cref="VlaCloud.Inference.TorchThreads"/>.
    /// </summary>
    public int? TorchThreads { get; set; }

    /// <summary>Most requests in one forward pass.</summary>
    public int MaxBatchSize { get; set; } = 32;

    /// <summary>
    /// How long a worker that is idle waits for more requests after the first one arrives. Under load the
    /// queue refills while a batch computes, so this only costs latency to a lone request; keep it small.
    /// </summary>
    public TimeSpan MaxQueueDelay { get; set; } = TimeSpan.FromMilliseconds(2);

    /// <summary>
    /// Whether an idle worker dispatches a lone request at once instead of holding it for <see cref="MaxQueueDelay"/>: when it
    /// is the only request waiting and the worker's previous batch had one request (or there was none), there is no load to
    /// batch with, so the window would only add latency. Once batches hold more than one request (load), the window applies
    /// again, so requests still batch under load. Default true; false holds every first request for the window.
    /// </summary>
    public bool IdleDispatch { get; set; } = true;

    /// <summary>Most requests waiting over all devices; past it callers get <see cref="EngineBusyException"/> at once.</summary>
    public int QueueCapacity { get; set; } = 512;

    /// <summary>
    /// Most requests of one tenant waiting over all devices (a bounded per-tenant queue); past it that tenant gets
    /// <see cref="TenantShareExceededException"/> (429) while other tenants are still queued. When the whole queue is
    /// full and other tenants wait in it too, a tenant holding at least its weighted share of it is refused the same way; a
    /// tenant below its share (or alone in the queue) gets <see cref="EngineBusyException"/> (503).
    /// </summary>
    public int MaxQueuedPerTenant { get; set; } = 128;

    /// <summary>
    /// The cost the fair scheduler charges for a request that names no step count (its checkpoint's default); a
    /// request's cost is its steps, so a tenant asking for 100 steps uses its share ten times faster than one asking 10.
    /// </summary>
    public int NominalSteps { get; set; } = 10;

    /// <summary>
    /// Most denoising steps one batch may take in total (requests × steps); 0: <see cref="MaxBatchSize"/> ×
    /// <see cref="NominalSteps"/>. A batch of costly requests (100 steps each) is made smaller, so another tenant's
    /// request never waits behind more than about one ordinary batch.
    /// </summary>
    public int MaxBatchSteps { get; set; }

    /// <summary>
    /// Most batches one device has in flight at once. A worker slices batches between denoising steps: it takes one step
    /// of one batch in flight at a time and starts waiting batches between steps, so a short request does not wait for a
    /// long one's remaining steps. More batches in flight mean less waiting to start and more memory held.
    /// </summary>
    public int MaxInFlightBatches { get; set; } = 8;

    /// <summary>
    /// Most batches in flight on one device that hold a request of the same tenant; a tenant at it waits for one of them to
    /// finish before another of its batches starts, so one tenant's flood cannot take every place in flight.
    /// </summary>
    public int MaxInFlightBatchesPerTenant { get; set; } = 2;

    /// <summary>
    /// Sessions per loaded checkpoint whose last prefix (the VLM's condition for their last observation) is kept, so a
    /// streaming client (<see cref="InferenceRequest.Session"/>: the openpi WebSocket route, <c>/v1/stream</c>) that sends
    /// the same observation again skips the VLM; least recently used sessions are evicted past it, 0 turns the cache off.
    /// Each entry is one observation's condition (Q × D floats: a few kB for the tiny models, ~200 kB for a released M1 in fp32).
    /// </summary>
    public int SessionPrefixes { get; set; } = VlaCloud.Policy.VlaPolicy.DefaultSessionPrefixes;

    /// <summary>Deadline of a request that names none.</summary>
    public TimeSpan DefaultTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Where checkpoint artifacts are unpacked (one folder per artifact SHA-256); a cache, safe to delete.</summary>
    public string CheckpointCachePath { get; set; } = Path.Combine(Path.GetTempPath(), "vlacloud-checkpoints");

    /// <summary>
    /// Bytes of model weights one device may hold; least recently used models are evicted past it. A checkpoint whose
    /// parameters alone need more (parameters × bytes of <see cref="DType"/>) is refused at registration and at load.
    /// </summary>
    public long ModelMemoryBudgetBytes { get; set; } = 4L << 30;

    /// <summary>
    /// How long a load that failed for a reason that may pass (the artifact store did not answer) is remembered: requests
    /// for the checkpoint meanwhile get 503 with <c>Retry-After</c> without another attempt. Doubles with each failure in
    /// a row, up to <see cref="FailedLoadMaxRetryAfter"/>.
    /// </summary>
    public TimeSpan FailedLoadRetryAfter { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The longest a passing load failure is remembered.</summary>
    public TimeSpan FailedLoadMaxRetryAfter { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long a checkpoint that cannot be served (corrupt, invalid, too large) is remembered as such: its requests get 422
    /// without a load. Its bytes never change (artifacts are content-addressed), so this only bounds how long a fixed
    /// deployment setting (a larger budget) waits to be noticed.
    /// </summary>
    public TimeSpan UnservableRetryAfter { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Bytes per weight in <see cref="DType"/>.</summary>
    public int BytesPerWeight => VlaCloud.Policy.VlaPolicy.BytesPerWeight(DType);
}
