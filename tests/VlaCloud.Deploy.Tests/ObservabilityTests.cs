using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;
using VlaCloud.Telemetry;
using VlaCloud.Testing;

namespace VlaCloud.Deploy.Tests;

[Collection(DeployCollection.Name)]
public sealed class ObservabilityTests(ServicesFixture services)
{
    [Fact]
    public async Task Metrics_answers_prometheus_text_with_http_server_request_metrics_after_a_request()
    {
        await using var app = new VlaCloudAppFactory(services);
        var client = app.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);

        var response = await client.GetAsync("/metrics");
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("# TYPE http_server_request_duration_seconds histogram", text);
        Assert.Contains(text.Split('\n'), line =>
            line.StartsWith("http_server_request_duration_seconds_count{", StringComparison.Ordinal) &&
            line.Contains("http_route=\"/healthz\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Vlacloud_instruments_are_exported_under_their_prometheus_names()
    {
        await using var app = new VlaCloudAppFactory(services);
        var client = app.CreateClient();
        await client.GetAsync("/metrics");

        VlaCloudTelemetry.InferenceRequests.Add(3, new KeyValuePair<string, object?>(VlaCloudTelemetry.Tags.Outcome, "rejected"));
        VlaCloudTelemetry.InferenceBatchSize.Record(4);
        var text = await client.GetStringAsync("/metrics");

        Assert.Contains(text.Split('\n'), line =>
            line.StartsWith("vlacloud_inference_requests_total{", StringComparison.Ordinal) && line.Contains("vlacloud_outcome=\"rejected\"", StringComparison.Ordinal));
        Assert.Contains("vlacloud_inference_batch_size_bucket{", text);
    }

    [Fact]
    public async Task With_a_metrics_port_set_metrics_are_not_answered_on_other_ports()
    {
        await using var app = new VlaCloudAppFactory(services, new Dictionary<string, string?>
        {
            ["VlaCloud:Observability:MetricsPort"] = "9464",
        });
        var response = await app.CreateClient().GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        // Swagger lives beside the metrics: not on the public port either.
        Assert.Equal(HttpStatusCode.NotFound, (await app.CreateClient().GetAsync("/swagger/v1/swagger.json")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await app.CreateClient().GetAsync("/swagger/index.html")).StatusCode);
    }

    [Fact]
    public async Task The_inference_queue_depth_the_autoscaler_reads_is_a_prometheus_gauge()
    {
        await using var app = new VlaCloudAppFactory(services);
        var client = app.CreateClient();
        await client.GetAsync("/metrics");
        VlaCloudTelemetry.InferenceQueueDepth.Add(0);
        var text = await client.GetStringAsync("/metrics");
        Assert.Contains("# TYPE vlacloud_inference_queue_depth gauge", text.Split('\n'));
    }

    [Fact]
    public async Task Log_lines_of_an_authenticated_request_carry_its_tenant_and_key_ids_in_scope()
    {
        var capture = new CapturingLoggerProvider();
        await using var app = new VlaCloudAppFactory(services);
        await using var logged = app.WithWebHostBuilder(host => host.ConfigureLogging(logging =>
        {
            logging.AddProvider(capture);
            // Routing logs each endpoint it runs at Information; the host's defaults keep Microsoft.AspNetCore at Warning.
            logging.AddFilter<CapturingLoggerProvider>(null, LogLevel.Debug);
        }));
        var (tenant, key) = await app.CreateTenantAsync();
        var client = logged.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", key);

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);

        var inRequest = capture.Entries.Where(e => e.Scopes.ContainsKey("tenant_id")).ToList();
        Assert.NotEmpty(inRequest);
        Assert.All(inRequest, e => Assert.Equal(tenant.Id.ToString(), e.Scopes["tenant_id"]));
        Assert.All(inRequest, e => Assert.True(Guid.TryParse(e.Scopes["key_id"], out _)));
        // ASP.NET Core's own request scope is there too, so a line leads back to its request.
        Assert.All(inRequest, e => Assert.True(e.Scopes.ContainsKey("RequestId")));
    }

    [Trait("Category", "Slow")]
    [Fact]
    public async Task Console_logs_are_json_with_scopes_by_default_and_simple_when_configured()
    {
        await using (var app = new VlaCloudAppFactory(services))
        {
            var console = app.Services.GetRequiredService<IOptionsMonitor<ConsoleLoggerOptions>>().CurrentValue;
            Assert.Equal(ConsoleFormatterNames.Json, console.FormatterName);
            Assert.True(app.Services.GetRequiredService<IOptionsMonitor<JsonConsoleFormatterOptions>>().CurrentValue.IncludeScopes);
        }

        await using (var app = new VlaCloudAppFactory(services, new Dictionary<string, string?>
        {
            ["VlaCloud:Observability:LogFormat"] = "simple",
        }))
        {
            var console = app.Services.GetRequiredService<IOptionsMonitor<ConsoleLoggerOptions>>().CurrentValue;
            Assert.Equal(ConsoleFormatterNames.Simple, console.FormatterName);
        }
    }

    /// <summary>One log line with the scopes that were open when it was written.</summary>
    private sealed record LogEntry(string Category, string Message, IReadOnlyDictionary<string, string?> Scopes);

    private sealed class CapturingLoggerProvider : ILoggerProvider, ISupportExternalScope
    {
        private IExternalScopeProvider scopes = new LoggerExternalScopeProvider();

        public ConcurrentQueue<LogEntry> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void SetScopeProvider(IExternalScopeProvider scopeProvider) => scopes = scopeProvider;

        public void Dispose()
        {
        }

        private sealed class Logger(CapturingLoggerProvider provider, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => provider.scopes.Push(state);

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var values = new Dictionary<string, string?>();
                provider.scopes.ForEachScope((scope, into) =>
                {
                    if (scope is IEnumerable<KeyValuePair<string, object?>> pairs)
                        foreach (var (key, value) in pairs) into[key] = value?.ToString();
                }, values);
                provider.Entries.Enqueue(new LogEntry(category, formatter(state, exception), values));
            }
        }
    }
}
