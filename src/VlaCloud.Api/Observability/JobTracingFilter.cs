using System.Diagnostics;
using Hangfire;
using Hangfire.Client;
using Hangfire.Common;
using Hangfire.Server;
using VlaCloud.Telemetry;

namespace VlaCloud.Api.Observability;

/// <summary>
/// Carries the trace of whatever enqueued a background job (usually an API request) into the job's run, which
/// may happen minutes later on a trainer pod, and times each run. Jobs take ids, not payloads, so the W3C
/// trace context travels as a job parameter.
/// </summary>
internal sealed class JobTracingFilter : JobFilterAttribute, IClientFilter, IServerFilter
{
    public const string TraceParentParameter = "traceparent";
    public const string TraceStateParameter = "tracestate";

    /// <summary>Tag on the job's span with the Hangfire job id.</summary>
    public const string JobIdTag = "vlacloud.job.id";

    private const string ActivityItem = "vlacloud.activity";
    private const string StartedItem = "vlacloud.started";
    private static readonly Lock Registration = new();

    /// <summary>Adds the filter to Hangfire's global filters once per process (every host in a test run shares them).</summary>
    public static void Register()
    {
        lock (Registration)
        {
            if (GlobalJobFilters.Filters.Any(f => f.Instance is JobTracingFilter)) return;
            GlobalJobFilters.Filters.Add(new JobTracingFilter());
        }
    }

    public void OnCreating(CreatingContext context)
    {
        if (Activity.Current is not { } current) return;
        context.SetJobParameter(TraceParentParameter, current.Id);
        if (current.TraceStateString is { } state) context.SetJobParameter(TraceStateParameter, state);
    }

    public void OnCreated(CreatedContext context)
    {
    }

    public void OnPerforming(PerformingContext context)
    {
        ActivityContext.TryParse(
            context.GetJobParameter<string>(TraceParentParameter),
            context.GetJobParameter<string>(TraceStateParameter),
            out var parent);
        var kind = Kind(context.BackgroundJob.Job);
        var activity = VlaCloudTelemetry.ActivitySource.StartActivity($"job {kind}", ActivityKind.Consumer, parent);
        activity?.SetTag(JobIdTag, context.BackgroundJob.Id);
        activity?.SetTag(VlaCloudTelemetry.Tags.JobKind, kind);
        context.Items[ActivityItem] = activity;
        context.Items[StartedItem] = Stopwatch.GetTimestamp();
    }

    public void OnPerformed(PerformedContext context)
    {
        var outcome = context.Canceled ? "cancelled" : context.Exception is null ? "ok" : "error";
        if (context.Items.TryGetValue(StartedItem, out var started) && started is long timestamp)
        {
            VlaCloudTelemetry.JobDuration.Record(Stopwatch.GetElapsedTime(timestamp).TotalSeconds,
                new KeyValuePair<string, object?>(VlaCloudTelemetry.Tags.JobKind, Kind(context.BackgroundJob.Job)),
                new KeyValuePair<string, object?>(VlaCloudTelemetry.Tags.Outcome, outcome));
        }
        if (context.Items.TryGetValue(ActivityItem, out var item) && item is Activity activity)
        {
            if (context.Exception is { } exception) activity.AddException(exception).SetStatus(ActivityStatusCode.Error, exception.Message);
            activity.Dispose();
        }
    }

    private static string Kind(Job? job) => job?.Type.Name ?? "unknown";
}
