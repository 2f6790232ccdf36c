namespace VlaCloud.Api.Hosting;

/// <summary>Host settings, bound from the <c>VlaCloud</c> configuration section.</summary>
public sealed class VlaCloudOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "VlaCloud";

    /// <summary>Apply pending EF Core migrations before serving (off in Kubernetes, where a Job does it).</summary>
    public bool MigrateOnStart { get; set; }

    /// <summary>Create the demo tenant, its API key and the demo checkpoint when missing.</summary>
    public bool SeedDemo { get; set; }

    /// <summary>Where the demo API key is also written (mode 600) when it is created; null to only print it.</summary>
    public string? DemoKeyFile { get; set; }

    /// <summary>
    /// What this process does, comma-separated: <c>api</c> serves requests, <c>trainer</c> runs Hangfire
    /// jobs. One process does both on a laptop; Kubernetes runs them as separate Deployments.
    /// </summary>
    public string Roles { get; set; } = "api,trainer";

    /// <summary>Prefix of every Redis key and channel this deployment uses, so deployments can share a Redis.</summary>
    public string RedisPrefix { get; set; } = "vlacloud:";

    /// <summary>How long an <c>Idempotency-Key</c> and its stored response are kept (at least 24 h, as Stripe).</summary>
    public TimeSpan IdempotencyKeyLifetime { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Hangfire workers of a trainer process: one per training device.</summary>
    public int TrainerWorkers { get; set; } = 1;

    /// <summary>Whether this process runs a Hangfire server for the fine-tuning queue.</summary>
    public bool IsTrainer => HasRole("trainer");

    private bool HasRole(string role) =>
        Roles.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Contains(role, StringComparer.OrdinalIgnoreCase);
}
