using System.Collections.Concurrent;
using System.Diagnostics;
using Hangfire;
using Microsoft.Extensions.DependencyInjection;
using VlaCloud.Telemetry;
using VlaCloud.Testing;

namespace VlaCloud.Deploy.Tests;

[Collection(DeployCollection.Name)]
public sealed class JobTracingTests(ServicesFixture services)
{
    [Fact]
    public async Task A_job_enqueued_inside_a_traced_request_runs_in_the_same_trace_on_the_trainer()
    {
        var stopped = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is VlaCloudTelemetry.Name or nameof(JobTracingTests),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        using var source = new ActivitySource(nameof(JobTracingTests));

        await using var app = new VlaCloudAppFactory(services, new Dictionary<string, string?> { ["VlaCloud:Roles"] = "api,trainer" });
        var jobs = app.Services.GetRequiredService<IBackgroundJobClient>();
        string jobId;
        ActivityContext request;
        using (var activity = source.StartActivity("POST /v1/fine_tuning/jobs", ActivityKind.Server)!)
        {
            request = activity.Context;
            jobId = jobs.Enqueue(() => TracedJob.Run());
        }

        // Hangfire's Postgres storage polls its queues every 15 s.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        Activity? run = null;
        while (run is null && DateTime.UtcNow < deadline)
        {
            run = stopped.FirstOrDefault(a => a.Source.Name == VlaCloudTelemetry.Name && (string?)a.GetTagItem("vlacloud.job.id") == jobId);
            if (run is null) await Task.Delay(200);
        }

        Assert.NotNull(run);
        Assert.Equal(request.TraceId, run.TraceId);
        Assert.Equal(request.SpanId, run.ParentSpanId);
        Assert.Equal(ActivityKind.Consumer, run.Kind);
        Assert.Equal(nameof(TracedJob), run.GetTagItem(VlaCloudTelemetry.Tags.JobKind));
    }
}

/// <summary>A background job that does nothing but run; public and static so Hangfire can invoke it.</summary>
public static class TracedJob
{
    /// <summary>The job's body.</summary>
    public static void Run()
    {
    }
}
