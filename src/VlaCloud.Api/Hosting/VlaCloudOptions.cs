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
    /// Where the platform administrator's key that the demo seeding creates is also written (mode 600); null to only
    /// print it.
    /// </summary>
    public string? AdminKeyFile { get; set; }

    /// <summary>
    /// What this process does, comma-separated: <c>api</c> serves requests, <c>trainer</c> runs Hangfire
    /// jobs. One process does both on a laptop; Kubernetes runs them as separate Deployments.
    /// </summary>
    public string Roles { get; set; } = "api,trainer";

    /// <summary>Prefix of every Redis key and channel this deployment uses, so deployments can share a Redis.</summary>
    public string RedisPrefix { get; set; } = "vlacloud:";

    /// <summary>How long an <c>Idempotency-Key</c> and its stored response are kept (at least 24 h, as Stripe).</summary>
    public TimeSpan IdempotencyKeyLifetime { get; set; } = TimeSpan.FromHours(24);

    /// <summary>
    /// How long a pending <c>Idempotency-Key</c> marks its request as running. The request renews it while it runs, so
    /// only a process that died mid-request lets it lapse, and a retry may run after this long.
    /// </summary>
    public TimeSpan IdempotencyPendingLease { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Longest wait for an answer from a Redis that is connected but slow or hung; past it the request degrades (rate
    /// limits and quotas answer 503 with <c>Retry-After</c>). A Redis that is down (connection refused or lost) fails
    /// every command at once, without this wait.
    /// </summary>
    public TimeSpan RedisTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Whether the Redis client reads and writes its sockets on the .NET thread pool (the default) rather than on its own
    /// ten dedicated threads. Every request makes one pipelined Redis round trip (rate limit and quota), and on the
    /// dedicated threads that round trip wakes threads that then hand the answer to the pool anyway: interleaved
    /// <c>serving cpu</c> runs measured 13–20 wake-ups per request on the pool against 20–24 with the dedicated threads, and
    /// 0.95–1.54 ms against 1.30–1.55 ms of host CPU per request outside the forward (docs/perf-issue-23-notes.md,
    /// Session 36). Set it to false if request code ever blocks pool threads for long enough to delay Redis answers.
    /// </summary>
    public bool RedisOnThreadPool { get; set; } = true;

    /// <summary>
    /// Whether Kestrel runs a connection's request processing and its socket sends on the thread that received the bytes
    /// (<c>SocketTransportOptions.UnsafePreferInlineScheduling</c>) instead of handing each to the thread pool. Off by
    /// default. Each hand-off is a pool work item that can wake a sleeping pool thread: it takes a <c>/v1/act</c> request
    /// from ~10 work items to ~7.4, but in interleaved <c>serving cpu</c> runs the host's CPU per request outside the
    /// forward did not drop by more than the runs' spread (docs/perf-issue-23-notes.md, Sessions 35 and 37). The cost of
    /// turning it on: a request's code runs inside its connection's receive loop until its first asynchronous wait, so code
    /// that blocks there stalls that connection's reads. Socket completions themselves stay on the pool (never set
    /// <c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c> with it: Session 36).
    /// </summary>
    public bool InlineSocketScheduling { get; set; }

    /// <summary>The <c>Retry-After</c> of a 503 that says Postgres or Redis does not answer.</summary>
    public TimeSpan DependencyRetryAfter { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Origins (<c>scheme://host[:port]</c>) whose pages may open WebSocket sessions. Empty (the default): only clients
    /// that send no <c>Origin</c> header (robots, SDKs, the CLI); a browser page's upgrade is refused, so no other site
    /// can open a session with a user's credentials.
    /// </summary>
    public string[] WebSocketAllowedOrigins { get; set; } = [];

    /// <summary>Failed authentications one client address may make per minute before it is refused with 429.</summary>
    public int FailedAuthPerMinute { get; set; } = 30;

    /// <summary>Hangfire workers of a trainer process: one per training device.</summary>
    public int TrainerWorkers { get; set; } = 1;

    /// <summary>Whether this process runs a Hangfire server for the fine-tuning queue.</summary>
    public bool IsTrainer => HasRole("trainer");

    private bool HasRole(string role) =>
        Roles.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Contains(role, StringComparer.OrdinalIgnoreCase);
}
