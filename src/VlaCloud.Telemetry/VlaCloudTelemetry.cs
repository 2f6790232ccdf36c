using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace VlaCloud.Telemetry;

/// <summary>
/// The one <see cref="ActivitySource"/> and <see cref="Meter"/> of VlaCloud, with the instruments every
/// part records into. It is a project of its own, without dependencies, so every server project can record
/// without referencing anything else; the host exports both (Prometheus <c>/metrics</c>, OTLP traces) without the
/// parts knowing how.
/// </summary>
/// <remarks>
/// Names follow OpenTelemetry conventions (dotted, unit in <c>unit</c>, not in the name); Prometheus
/// shows them with underscores and a unit suffix, e.g. <c>vlacloud_inference_queue_wait_seconds</c>.
/// Work that crosses a thread or a job keeps its trace by capturing <see cref="Activity.Current"/>'s
/// context where the work is queued and starting the worker's activity with that parent (or a link,
/// when one batch serves many requests).
/// </remarks>
public static class VlaCloudTelemetry
{
    /// <summary>Name of the activity source and of the meter.</summary>
    public const string Name = "VlaCloud";

    /// <summary>Source of VlaCloud's own spans (inference batches, model loads, jobs).</summary>
    public static readonly ActivitySource ActivitySource = new(Name);

    /// <summary>Meter of VlaCloud's own metrics; parts may add observable gauges of their state on it.</summary>
    public static readonly Meter Meter = new(Name);

    /// <summary>Tag names shared by the instruments and spans.</summary>
    public static class Tags
    {
        /// <summary>The tenant a measurement belongs to (use on spans; too many values for metrics).</summary>
        public const string TenantId = "vlacloud.tenant_id";

        /// <summary>The checkpoint a batch or cache entry is for.</summary>
        public const string Checkpoint = "vlacloud.checkpoint";

        /// <summary>The device an inference worker runs on (<c>cpu</c>, <c>cuda:0</c>…).</summary>
        public const string Device = "vlacloud.device";

        /// <summary>How something ended: <c>ok</c>, <c>rejected</c>, <c>timeout</c>, <c>error</c>, <c>hit</c>, <c>miss</c>…</summary>
        public const string Outcome = "vlacloud.outcome";

        /// <summary>A Hangfire job kind (<c>finetune</c>, <c>evaluate</c>).</summary>
        public const string JobKind = "vlacloud.job.kind";

        /// <summary>The rate-limit policy that refused a request.</summary>
        public const string Policy = "vlacloud.rate_limit.policy";

        /// <summary>The API surface a request came through (<c>rest</c>, <c>stream</c>, <c>openpi</c>).</summary>
        public const string Surface = "vlacloud.surface";
    }

    /// <summary>Inference requests by outcome (<c>ok</c>, <c>rejected</c> when the queue is full, <c>timeout</c>, <c>error</c>).</summary>
    public static readonly Counter<long> InferenceRequests =
        Meter.CreateCounter<long>("vlacloud.inference.requests", "{request}", "Inference requests by outcome.");

    /// <summary>Requests waiting in the inference queues; add 1 on enqueue and −1 on dequeue.</summary>
    public static readonly UpDownCounter<long> InferenceQueueDepth =
        Meter.CreateUpDownCounter<long>("vlacloud.inference.queue.depth", "{request}", "Requests waiting for an inference worker.");

    /// <summary>Time a request waited between enqueue and the start of its batch.</summary>
    public static readonly Histogram<double> InferenceQueueWait =
        Meter.CreateHistogram<double>("vlacloud.inference.queue.wait", "s", "Time from enqueue to the start of the request's batch.");

    /// <summary>Requests per executed batch.</summary>
    public static readonly Histogram<int> InferenceBatchSize =
        Meter.CreateHistogram<int>("vlacloud.inference.batch.size", "{request}", "Requests served by one batch.");

    /// <summary>Time one batch took on its device.</summary>
    public static readonly Histogram<double> InferenceBatchDuration =
        Meter.CreateHistogram<double>("vlacloud.inference.batch.duration", "s", "Time one batch took on its device.");

    /// <summary>Model cache look-ups, tagged <see cref="Tags.Outcome"/> <c>hit</c> or <c>miss</c>.</summary>
    public static readonly Counter<long> ModelCacheLookups =
        Meter.CreateCounter<long>("vlacloud.model_cache.lookups", "{lookup}", "Model cache look-ups by outcome (hit, miss).");

    /// <summary>Models evicted from the cache to stay within its memory budget.</summary>
    public static readonly Counter<long> ModelCacheEvictions =
        Meter.CreateCounter<long>("vlacloud.model_cache.evictions", "{model}", "Models evicted to stay within the memory budget.");

    /// <summary>Time to load a checkpoint into the cache.</summary>
    public static readonly Histogram<double> ModelLoadDuration =
        Meter.CreateHistogram<double>("vlacloud.model_cache.load.duration", "s", "Time to load a checkpoint onto a device.");

    /// <summary>Background jobs that finished, by <see cref="Tags.JobKind"/> and <see cref="Tags.Outcome"/> (<c>succeeded</c>, <c>failed</c>, <c>cancelled</c>).</summary>
    public static readonly Counter<long> JobsFinished =
        Meter.CreateCounter<long>("vlacloud.jobs.finished", "{job}", "Background jobs that finished, by kind and outcome.");

    /// <summary>Wall time of a background job run.</summary>
    public static readonly Histogram<double> JobDuration =
        Meter.CreateHistogram<double>("vlacloud.jobs.duration", "s", "Wall time of one background job run.");

    /// <summary>Training steps completed by fine-tuning jobs.</summary>
    public static readonly Counter<long> TrainingSteps =
        Meter.CreateCounter<long>("vlacloud.training.steps", "{step}", "Optimizer steps completed by fine-tuning jobs.");

    /// <summary>Requests refused by a rate limit, by <see cref="Tags.Policy"/>.</summary>
    public static readonly Counter<long> RateLimitRejections =
        Meter.CreateCounter<long>("vlacloud.rate_limit.rejections", "{request}", "Requests refused by a tenant rate limit.");
}
