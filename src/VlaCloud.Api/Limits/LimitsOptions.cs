using VlaCloud.Registry;

namespace VlaCloud.Api.Limits;

/// <summary>Deployment defaults for tenant limits, section <c>VlaCloud:Limits</c>; a tenant row may override each.</summary>
public sealed class LimitsOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "VlaCloud:Limits";

    /// <summary>Requests per second for all of a tenant's keys together.</summary>
    public double TenantRequestsPerSecond { get; set; } = 50;

    /// <summary>Tenant burst (bucket size).</summary>
    public int TenantBurst { get; set; } = 100;

    /// <summary>Requests per second for one key, so one runaway client cannot use the whole tenant's rate.</summary>
    public double KeyRequestsPerSecond { get; set; } = 25;

    /// <summary>Key burst (bucket size).</summary>
    public int KeyBurst { get; set; } = 50;

    /// <summary>Streams a tenant may hold open at once.</summary>
    public int MaxConcurrentStreams { get; set; } = 4;

    /// <summary>How long a stream slot lives without renewal, so a crashed replica's slots come back.</summary>
    public TimeSpan StreamSlotLease { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Compute milliseconds per tenant per UTC month (default 100 hours).</summary>
    public long MonthlyComputeMsQuota { get; set; } = 100L * 3600 * 1000;

    /// <summary>Bytes of artifacts, datasets and pending uploads per tenant (default 100 GiB).</summary>
    public long StorageQuotaBytes { get; set; } = 100L << 30;

    /// <summary>Fine-tuning jobs a tenant may have queued or running at once; more are refused at creation.</summary>
    public int MaxActiveJobsPerTenant { get; set; } = 10;

    /// <summary>
    /// What rate limiting does when Redis does not answer: false (the default) refuses with 503 and <c>Retry-After</c>;
    /// true lets requests through unlimited. Quotas always refuse.
    /// </summary>
    public bool RateLimitFailOpen { get; set; }

    /// <summary>
    /// How long a replica may hold request-rate tokens taken from Redis ahead of its requests (admission leases, see
    /// <see cref="RequestRateLimiter"/>); <c>00:00:00</c> turns leases off: one Redis call per request. With leases on, a key
    /// this replica sees at a sustained rate takes several tokens per Redis call (about its rate × this window, at most an
    /// eighth of the smaller burst and one window of the smaller rate) and admits the next requests from memory; a key at a
    /// low rate (under 2 requests per window) takes one token per request as with leases off. Exactness: never more
    /// admitted than the buckets allow, across all replicas; tokens a replica holds unspent (at most about two leases per
    /// key) are unavailable to the others until they are spent or go back to Redis, at most one window (plus one sweep
    /// period) after the lease's last refill. The <c>RateLimit</c> header's remaining count and the compute quota's counter are read
    /// with the lease, so up to one window older than without leases. The default, 250 ms, was chosen on the serving
    /// benchmark (docs/perf-issue-23-notes.md, Session 38): at 1 client ~6 thread-pool work items per request instead of
    /// ~10 and a little less CPU outside the forward, with a Redis call every ~20–30 requests of a busy key.
    /// </summary>
    public TimeSpan LeaseWindow { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>The limits in force for a tenant with these overrides.</summary>
    public TenantLimits For(TenantLimitOverrides overrides) => new(
        overrides.RequestsPerSecond ?? TenantRequestsPerSecond,
        overrides.Burst ?? TenantBurst,
        Math.Min(KeyRequestsPerSecond, overrides.RequestsPerSecond ?? double.MaxValue),
        Math.Min(KeyBurst, overrides.Burst ?? int.MaxValue),
        overrides.MaxConcurrentStreams ?? MaxConcurrentStreams,
        overrides.MonthlyComputeMsQuota ?? MonthlyComputeMsQuota,
        overrides.StorageQuotaBytes ?? StorageQuotaBytes,
        overrides.InferenceWeight);
}

/// <summary>The limits in force for one tenant.</summary>
/// <param name="RequestsPerSecond">Tenant request rate.</param>
/// <param name="Burst">Tenant bucket size.</param>
/// <param name="KeyRequestsPerSecond">Per-key request rate (never above the tenant's).</param>
/// <param name="KeyBurst">Per-key bucket size (never above the tenant's).</param>
/// <param name="MaxConcurrentStreams">Streams at once.</param>
/// <param name="MonthlyComputeMsQuota">Compute milliseconds per UTC month.</param>
/// <param name="StorageQuotaBytes">Bytes of artifacts, datasets and pending uploads.</param>
/// <param name="InferenceWeight">The tenant's weight in the inference engine's fair sharing (the tenant's own, no deployment default).</param>
public sealed record TenantLimits(
    double RequestsPerSecond, int Burst, double KeyRequestsPerSecond, int KeyBurst, int MaxConcurrentStreams, long MonthlyComputeMsQuota,
    long StorageQuotaBytes, double InferenceWeight = VlaCloud.Registry.Entities.Tenant.DefaultInferenceWeight);

/// <summary>The outcome of a limit check, with what the <c>RateLimit-*</c> headers report.</summary>
/// <param name="Allowed">Whether the request may proceed.</param>
/// <param name="Limit">The bucket size (or quota) of the tightest limit.</param>
/// <param name="Remaining">What is left of it after this request.</param>
/// <param name="ResetAfter">When it is full again (or the quota period ends).</param>
/// <param name="RetryAfter">When to retry, for a refusal.</param>
/// <param name="Reason">Which limit refused, for the problem detail.</param>
public sealed record LimitDecision(bool Allowed, long Limit, long Remaining, TimeSpan ResetAfter, TimeSpan RetryAfter, string? Reason = null);
