using Microsoft.Extensions.Logging.Console;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using VlaCloud.Api.Hosting;
using VlaCloud.Telemetry;

namespace VlaCloud.Api.Observability;

/// <summary>Structured logs, Prometheus metrics and OpenTelemetry traces for the host.</summary>
public static class ObservabilitySetup
{
    /// <summary>
    /// Console logs as JSON with scopes (request id, trace id, tenant id) unless configured otherwise,
    /// metrics of ASP.NET Core, HttpClient, the runtime and <see cref="VlaCloudTelemetry"/> for Prometheus,
    /// traces exported over OTLP when an endpoint is configured, and the trace carried from a request into the
    /// background jobs it enqueues.
    /// </summary>
    public static WebApplicationBuilder AddVlaCloudObservability(this WebApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(ObservabilityOptions.Section).Get<ObservabilityOptions>() ?? new();
        builder.Services.AddOptions<ObservabilityOptions>().BindConfiguration(ObservabilityOptions.Section);
        JobTracingFilter.Register();

        if (options.LogFormat.Equals("simple", StringComparison.OrdinalIgnoreCase))
        {
            builder.Logging.AddSimpleConsole(console =>
            {
                console.IncludeScopes = true;
                console.SingleLine = true;
                console.TimestampFormat = "HH:mm:ss ";
            });
        }
        else
        {
            builder.Logging.AddJsonConsole(console =>
            {
                console.IncludeScopes = true;
                console.UseUtcTimestamp = true;
                console.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
        }
        builder.Logging.Configure(logging => logging.ActivityTrackingOptions =
            ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId | ActivityTrackingOptions.ParentId);

        var roles = builder.Configuration[$"{VlaCloudOptions.Section}:{nameof(VlaCloudOptions.Roles)}"] ?? new VlaCloudOptions().Roles;
        var otlpEndpoint = options.OtlpEndpoint is { Length: > 0 } configured
            ? configured
            : builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"];

        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource
                .AddService(options.ServiceName, serviceInstanceId: Environment.MachineName)
                .AddAttributes([new("vlacloud.roles", roles)]))
            .WithMetrics(metrics => metrics
                .AddMeter(VlaCloudTelemetry.Name)
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                // A scrape always sees the latest values; Prometheus decides how often it asks.
                .AddPrometheusExporter(prometheus => prometheus.ScrapeResponseCacheDurationMilliseconds = 0));

        if (otlpEndpoint is { Length: > 0 })
        {
            telemetry.WithTracing(tracing => tracing
                .AddSource(VlaCloudTelemetry.Name)
                .AddAspNetCoreInstrumentation(aspnet =>
                    // Probes and scrapes every few seconds would drown the traces worth reading.
                    aspnet.Filter = context => !IsHousekeeping(context.Request.Path, options))
                .AddHttpClientInstrumentation()
                .AddOtlpExporter(otlp => otlp.Endpoint = new Uri(otlpEndpoint)));
        }
        return builder;
    }

    /// <summary>Answers Prometheus scrapes at <see cref="ObservabilityOptions.MetricsPath"/> (only on <see cref="ObservabilityOptions.MetricsPort"/> when set).</summary>
    public static IApplicationBuilder UseVlaCloudMetrics(this WebApplication app)
    {
        var options = app.Configuration.GetSection(ObservabilityOptions.Section).Get<ObservabilityOptions>() ?? new();
        return app.UseOpenTelemetryPrometheusScrapingEndpoint(context =>
            context.Request.Path.Equals(options.MetricsPath, StringComparison.OrdinalIgnoreCase) &&
            (options.MetricsPort is not { } port || context.Connection.LocalPort == port));
    }

    /// <summary>Puts the caller's tenant and key ids in the log scope; call after authentication.</summary>
    public static IApplicationBuilder UseTenantLogScope(this IApplicationBuilder app) =>
        app.UseMiddleware<TenantLogScopeMiddleware>();

    private static bool IsHousekeeping(PathString path, ObservabilityOptions options) =>
        path.StartsWithSegments("/healthz") || path.StartsWithSegments("/readyz") || path.StartsWithSegments(options.MetricsPath);
}
