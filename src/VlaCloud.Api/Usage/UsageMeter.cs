using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using VlaCloud.Api.Limits;
using VlaCloud.Registry;

namespace VlaCloud.Api.Usage;

/// <summary>One served unit of work to meter.</summary>
/// <param name="TenantId">The tenant charged.</param>
/// <param name="CheckpointId">The checkpoint that served it.</param>
/// <param name="Requests">Requests (usually 1).</param>
/// <param name="Actions">Action chunks returned.</param>
/// <param name="ComputeMs">Compute time spent, in milliseconds.</param>
public sealed record UsageRecord(Guid TenantId, Guid CheckpointId, long Requests, long Actions, long ComputeMs);

/// <summary>
/// The metering and quota API inference calls: <see cref="CheckComputeQuotaAsync(Guid, TenantLimits, CancellationToken)"/> before running a request,
/// <see cref="RecordAsync"/> after. The monthly compute counter lives in Redis (checked on the hot path);
/// the durable per-day roll-up lives in Postgres.
/// </summary>
public interface IUsageMeter
{
    /// <summary>Whether the tenant has compute quota left this UTC month.</summary>
    Task<LimitDecision> CheckComputeQuotaAsync(Guid tenantId, TenantLimits limits, CancellationToken cancellationToken);

    /// <summary>
    /// Where the tenant's month counter is now, so another Redis call (the rate limiter's script) can read it in its own round
    /// trip and hand the value to <see cref="CheckComputeQuotaAsync(ComputeCounterRead, TenantLimits, CancellationToken)"/>.
    /// </summary>
    ComputeCounterProbe ComputeCounter(Guid tenantId);

    /// <summary>
    /// What <see cref="CheckComputeQuotaAsync(Guid, TenantLimits, CancellationToken)"/> answers, from a counter value already
    /// read from Redis; Postgres is asked only when the counter was missing.
    /// </summary>
    Task<LimitDecision> CheckComputeQuotaAsync(ComputeCounterRead read, TenantLimits limits, CancellationToken cancellationToken);

    /// <summary>Charges the compute to this month's quota and adds the usage to today's roll-up.</summary>
    Task RecordAsync(UsageRecord usage, CancellationToken cancellationToken);
}

/// <summary>Where a tenant's month compute counter is, at the time it was asked.</summary>
/// <param name="TenantId">The tenant.</param>
/// <param name="Key">The Redis key of the counter.</param>
/// <param name="At">When the key was chosen (its month).</param>
public sealed record ComputeCounterProbe(Guid TenantId, RedisKey Key, DateTimeOffset At);

/// <summary>The value read for a <see cref="ComputeCounterProbe"/>.</summary>
/// <param name="Probe">What was read.</param>
/// <param name="Value">The counter, or <see cref="RedisValue.Null"/> when Redis does not hold it.</param>
public sealed record ComputeCounterRead(ComputeCounterProbe Probe, RedisValue Value);

/// <summary>
/// Postgres holds the bill (the per-day roll-up); Redis holds the hot path's copy of each tenant's month total, for
/// the quota check. A record is billed exactly once: it is one Postgres transaction, and the Redis copy is then set
/// to the month's total from Postgres, which a retry or a Redis outage cannot count twice.
/// </summary>
public sealed class UsageMeter(IServiceProvider services, IConnectionMultiplexer redis, RedisKeyspace keyspace, TimeProvider clock, ILogger<UsageMeter> logger) : IUsageMeter
{
    // The scope's context, taken when Postgres is first asked: the quota check of a request reads Redis and, but for a
    // missing counter, never queries, so a DbContext made for every request was waste.
    private RegistryDbContext? context;

    private RegistryDbContext Db => context ??= services.GetRequiredService<RegistryDbContext>();

    // KEYS: the month counter. ARGV: the month total from Postgres, expiry in seconds. Only ever raises the counter:
    // two replicas' totals may arrive out of order, and the later-read (larger) one is the right one.
    private const string RaiseScript = """
        local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
        local total = tonumber(ARGV[1])
        if total > current then redis.call('SET', KEYS[1], total, 'EX', tonumber(ARGV[2])) end
        return 1
        """;

    /// <inheritdoc />
    public async Task<LimitDecision> CheckComputeQuotaAsync(Guid tenantId, TenantLimits limits, CancellationToken cancellationToken)
    {
        var probe = ComputeCounter(tenantId);
        var value = await redis.GetDatabase().StringGetAsync(probe.Key);
        return await CheckComputeQuotaAsync(new ComputeCounterRead(probe, value), limits, cancellationToken);
    }

    /// <inheritdoc />
    public ComputeCounterProbe ComputeCounter(Guid tenantId)
    {
        var now = clock.GetUtcNow();
        return new ComputeCounterProbe(tenantId, MonthKey(tenantId, now), now);
    }

    /// <inheritdoc />
    public async Task<LimitDecision> CheckComputeQuotaAsync(ComputeCounterRead read, TenantLimits limits, CancellationToken cancellationToken)
    {
        var (tenantId, _, now) = read.Probe;
        var value = read.Value;
        var used = value.HasValue ? (long)value : await UsedThisMonthFromDatabaseAsync(tenantId, now, cancellationToken);
        var reset = MonthEnd(now) - now;
        var allowed = used < limits.MonthlyComputeMsQuota;
        return new LimitDecision(allowed, limits.MonthlyComputeMsQuota, Math.Max(0, limits.MonthlyComputeMsQuota - used),
            reset, allowed ? TimeSpan.Zero : reset, allowed ? null : "monthly compute quota");
    }

    /// <inheritdoc />
    /// <remarks>
    /// Throws only when Postgres did not take the record (so the caller may retry it). A Redis failure afterwards is
    /// logged, not thrown: the usage is billed, and the counter catches up from Postgres at the tenant's next record,
    /// or is read from Postgres while it is missing.
    /// </remarks>
    public async Task RecordAsync(UsageRecord usage, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow();
        var day = DateOnly.FromDateTime(now.UtcDateTime);
        long total;
        await using (var transaction = await Db.Database.BeginTransactionAsync(cancellationToken))
        {
            await Db.Database.ExecuteSqlAsync($"""
                INSERT INTO usage_days (tenant_id, day, checkpoint_id, requests, actions, compute_ms)
                VALUES ({usage.TenantId}, {day}, {usage.CheckpointId}, {usage.Requests}, {usage.Actions}, {usage.ComputeMs})
                ON CONFLICT (tenant_id, day, checkpoint_id) DO UPDATE SET
                  requests = usage_days.requests + excluded.requests,
                  actions = usage_days.actions + excluded.actions,
                  compute_ms = usage_days.compute_ms + excluded.compute_ms
                """, cancellationToken);
            total = await UsedThisMonthFromDatabaseAsync(usage.TenantId, now, cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        }

        try
        {
            var expiry = (long)Math.Ceiling((MonthEnd(now) - now + TimeSpan.FromDays(1)).TotalSeconds);
            await redis.GetDatabase().ScriptEvaluateAsync(RaiseScript, [MonthKey(usage.TenantId, now)], [total, expiry]);
        }
        catch (Exception e) when (DependencyFailure.IsUnavailable(e))
        {
            logger.LogWarning("Usage of tenant {Tenant} is billed; its quota counter in Redis is behind until Redis answers: {Reason}", usage.TenantId, e.Message);
        }
    }

    private Task<long> UsedThisMonthFromDatabaseAsync(Guid tenantId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var first = new DateOnly(now.UtcDateTime.Year, now.UtcDateTime.Month, 1);
        return Db.UsageDays.IgnoreQueryFilters()
            .Where(u => u.TenantId == tenantId && u.Day >= first)
            .SumAsync(u => u.ComputeMs, cancellationToken);
    }

    private RedisKey MonthKey(Guid tenantId, DateTimeOffset now) => keyspace.Key($"compute:{tenantId}:{now.UtcDateTime:yyyy-MM}");

    private static DateTimeOffset MonthEnd(DateTimeOffset now) =>
        new DateTimeOffset(now.UtcDateTime.Year, now.UtcDateTime.Month, 1, 0, 0, 0, TimeSpan.Zero).AddMonths(1);
}
