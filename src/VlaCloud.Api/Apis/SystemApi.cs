using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace VlaCloud.Api.Apis;

/// <summary>Liveness and readiness probes.</summary>
public static class SystemApi
{
    /// <summary>Tag of the checks that decide readiness.</summary>
    public const string ReadyTag = "ready";

    /// <summary>Maps <c>/healthz</c> and <c>/readyz</c>.</summary>
    public static IEndpointRouteBuilder MapSystemApi(this IEndpointRouteBuilder app)
    {
        var probes = app.MapGroup("").WithTags("System").AllowAnonymous();
        probes.MapGet("/healthz", Liveness)
            .WithName("Liveness")
            .WithSummary("Liveness: the process is up and serving HTTP.");
        probes.MapGet("/readyz", ReadinessAsync)
            .WithName("Readiness")
            .WithSummary("Readiness: Postgres and Redis answer; 503 with the failing checks otherwise.")
            .Produces<HealthReportResponse>(StatusCodes.Status503ServiceUnavailable);
        return app;
    }

    /// <remarks>
    /// Answers 200 with status <c>Healthy</c> whenever the process serves HTTP. It checks no dependency on purpose: a
    /// database outage makes the pod unready (<c>/readyz</c>), not restarted.
    /// </remarks>
    private static Ok<HealthReportResponse> Liveness() =>
        TypedResults.Ok(new HealthReportResponse("Healthy", []));

    /// <remarks>
    /// Runs the readiness checks (Postgres and Redis) and answers with each check's status, description and duration:
    /// 200 when all are healthy, else 503 with the same body (a health report, not a problem document), so a load
    /// balancer stops sending traffic until they recover.
    /// </remarks>
    private static async Task<Results<Ok<HealthReportResponse>, JsonHttpResult<HealthReportResponse>>> ReadinessAsync(
        HealthCheckService health, CancellationToken cancellationToken)
    {
        var report = await health.CheckHealthAsync(check => check.Tags.Contains(ReadyTag), cancellationToken);
        var body = new HealthReportResponse(
            report.Status.ToString(),
            report.Entries.Select(e => new HealthCheckEntry(e.Key, e.Value.Status.ToString(), e.Value.Description, e.Value.Duration.TotalMilliseconds)).ToList());
        return report.Status == HealthStatus.Healthy
            ? TypedResults.Ok(body)
            : TypedResults.Json(body, statusCode: StatusCodes.Status503ServiceUnavailable);
    }
}
