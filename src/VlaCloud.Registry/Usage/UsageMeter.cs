using Microsoft.EntityFrameworkCore;
using StackExchange.Redis;
using VlaCloud.Registry.Limits;

namespace VlaCloud.Registry.Usage;

/// <summary>One served unit of work to meter.</summary>
/// <param name="TenantId">The tenant charged.</param>
/// <param name="CheckpointId">The checkpoint that served it.</param>
/// <param name="Requests">Requests (usually 1).</param>
/// <param name="Actions">Action chunks returned.</param>
/// <param name="ComputeMs">Compute time spent, in milliseconds.</param>
public sealed record UsageRecord(Guid TenantId, Guid CheckpointId, long Requests, long Actions, long ComputeMs);

/// <summary>
/// The metering and quota API inference calls: <see cref="CheckComputeQuotaAsync"/> before running a request,
/// <see cref="RecordAsync"/> after. The monthly compute counter lives in Redis (checked on the hot path);
/// the durable per-day roll-up lives in Postgres.
/// </summary>
public interface IUsageMeter
{
    /// <summary>Whether the tenant has compute quota left this UTC month.</summary>
    Task<LimitDecision> CheckComputeQuotaAsync(Guid tenantId, TenantLimits limits, CancellationToken cancellationToken);

    /// <summary>Charges the compute to this month's quota and adds the usage to today's roll-up.</summary>
    Task RecordAsync(UsageRecord usage, CancellationToken cancellationToken);
}

/// <summary>Redis counter for the quota, Postgres upsert for the roll-up.</summary>
public sealed class UsageMeter(RegistryDbContext db, IConnectionMultiplexer redis, RedisKeyspace keyspace, TimeProvider clock) : IUsageMeter
{
    /// <inheritdoc />
    public async Task<LimitDecision> CheckComputeQuotaAsync(Guid tenantId, TenantLimits limits, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow();
        var value = await redis.GetDatabase().StringGetAsync(MonthKey(tenantId, now));
        var used = value.HasValue ? (long)value : await UsedThisMonthFromDatabaseAsync(tenantId, now, cancellationToken);
        var reset = MonthEnd(now) - now;
        var allowed = used < limits.MonthlyComputeMsQuota;
        return new LimitDecision(allowed, limits.MonthlyComputeMsQuota, Math.Max(0, limits.MonthlyComputeMsQuota - used),
            reset, allowed ? TimeSpan.Zero : reset, allowed ? null : "monthly compute quota");
    }

    /// <inheritdoc />
    public async Task RecordAsync(UsageRecord usage, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow();
        var day = DateOnly.FromDateTime(now.UtcDateTime);
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO usage_days (tenant_id, day, checkpoint_id, requests, actions, compute_ms)
            VALUES ({usage.TenantId}, {day}, {usage.CheckpointId}, {usage.Requests}, {usage.Actions}, {usage.ComputeMs})
            ON CONFLICT (tenant_id, day, checkpoint_id) DO UPDATE SET
              requests = usage_days.requests + excluded.requests,
              actions = usage_days.actions + excluded.actions,
              compute_ms = usage_days.compute_ms + excluded.compute_ms
            """, cancellationToken);

        var key = MonthKey(usage.TenantId, now);
        var redisDb = redis.GetDatabase();
        // Seed the counter from Postgres when Redis lost it (restart, eviction), then add.
        if (!await redisDb.KeyExistsAsync(key))
        {
            var total = await UsedThisMonthFromDatabaseAsync(usage.TenantId, now, cancellationToken);
            await redisDb.StringSetAsync(key, total, MonthEnd(now) - now + TimeSpan.FromDays(1), When.NotExists);
            return;
        }
        await redisDb.StringIncrementAsync(key, usage.ComputeMs);
    }

    private Task<long> UsedThisMonthFromDatabaseAsync(Guid tenantId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var first = new DateOnly(now.UtcDateTime.Year, now.UtcDateTime.Month, 1);
        return db.UsageDays.IgnoreQueryFilters()
            .Where(u => u.TenantId == tenantId && u.Day >= first)
            .SumAsync(u => u.ComputeMs, cancellationToken);
    }

    private RedisKey MonthKey(Guid tenantId, DateTimeOffset now) => keyspace.Key($"compute:{tenantId}:{now.UtcDateTime:yyyy-MM}");

    private static DateTimeOffset MonthEnd(DateTimeOffset now) =>
        new DateTimeOffset(now.UtcDateTime.Year, now.UtcDateTime.Month, 1, 0, 0, 0, TimeSpan.Zero).AddMonths(1);
}
