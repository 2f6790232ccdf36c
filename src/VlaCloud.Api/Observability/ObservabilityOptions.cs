namespace VlaCloud.Api.Observability;

/// <summary>Logs, metrics and traces, bound from the <c>VlaCloud:Observability</c> configuration section.</summary>
public sealed class ObservabilityOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "VlaCloud:Observability";

    /// <summary>Console log format: <c>json</c> (one JSON object a line, with scopes) or <c>simple</c> (for a terminal).</summary>
    public string LogFormat { get; set; } = "json";

    /// <summary>Path of the Prometheus scrape endpoint.</summary>
    public string MetricsPath { get; set; } = "/metrics";

    /// <summary>
    /// When set, <see cref="MetricsPath"/> answers only on this local port, so a cluster can keep metrics
    /// off the port its Ingress publishes; when null it answers on every port.
    /// </summary>
    public int? MetricsPort { get; set; }

    /// <summary>
    /// OTLP endpoint traces are exported to (e.g. <c>http://otel-collector:4317</c>); the standard
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> variable works too. No endpoint, no trace export.
    /// </summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>The service name traces and metrics carry.</summary>
    public string ServiceName { get; set; } = "vlacloud";
}
