using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using VlaCloud.Api.Auth;
using VlaCloud.Api.RateLimiting;
using VlaCloud.Registry;
using VlaCloud.Api.Usage;

namespace VlaCloud.Api.Apis;

/// <summary><c>/v1/usage</c>: the caller's metered use per day, and its monthly compute quota.</summary>
public static class UsageApi
{
    /// <summary>Longest range one request may ask for.</summary>
    public const int MaxDays = 366;

    /// <summary>Maps the group.</summary>
    public static IEndpointRouteBuilder MapUsageApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/usage").WithTags("Usage").RequireTenantRateLimit().RequireAuthorization(ScopePolicies.Tenant);
        group.MapGet("", GetAsync).WithName("GetUsage")
            .WithSummary("Usage per UTC day and checkpoint between from and to (inclusive; default: this month), with the compute quota.");
        return app;
    }

    /// <remarks>
    /// The caller's tenant's metered use, one row per UTC day and checkpoint (requests, actions and compute
    /// milliseconds, with the checkpoint's model and version), the totals over the range, and the monthly compute quota
    /// (limit, used, remaining and when it resets). 400 when <c>to</c> is before <c>from</c> or the range spans more than
    /// 366 days.
    /// </remarks>
    /// <param name="from">First day (UTC, `yyyy-MM-dd`), inclusive; default: the first day of the current month.</param>
    /// <param name="to">Last day (UTC, `yyyy-MM-dd`), inclusive; default: today. At most 366 days from `from`.</param>
    private static async Task<Results<Ok<UsageResponse>, ValidationProblem>> GetAsync(
        DateOnly? from, DateOnly? to, RegistryDbContext db, IUsageMeter meter, CurrentTenant tenant, TimeProvider clock, CancellationToken cancellationToken)
    {
        var today = DateOnly.FromDateTime(clock.GetUtcNow().UtcDateTime);
        var first = from ?? new DateOnly(today.Year, today.Month, 1);
        var last = to ?? today;
        if (last < first) return ApiResults.Invalid("to", "to must not be before from.");
        if (last.DayNumber - first.DayNumber >= MaxDays) return ApiResults.Invalid("from", $"ask for at most {MaxDays} days at once.");

        var rows = await db.UsageDays.AsNoTracking()
            .Where(u => u.Day >= first && u.Day <= last)
            .OrderBy(u => u.Day).ThenBy(u => u.CheckpointId)
            .ToListAsync(cancellationToken);
        // Usage is metered per checkpoint id; people read it per model, so each row carries the name too.
        var ids = rows.Select(u => u.CheckpointId).Where(id => id != Guid.Empty).Distinct().ToList();
        var names = await db.Checkpoints.AsNoTracking().Where(c => ids.Contains(c.Id))
            .Select(c => new { c.Id, c.ModelName, c.Version }).ToDictionaryAsync(c => c.Id, cancellationToken);
        var quota = await meter.CheckComputeQuotaAsync(tenant.TenantId!.Value, tenant.Limits, cancellationToken);
        return TypedResults.Ok(new UsageResponse(
            first, last,
            rows.Select(u => new UsageDayResponse(u.Day, u.CheckpointId == Guid.Empty ? null : u.CheckpointId, u.Requests, u.Actions, u.ComputeMs,
                names.GetValueOrDefault(u.CheckpointId)?.ModelName, names.GetValueOrDefault(u.CheckpointId)?.Version)).ToList(),
            rows.Sum(u => u.Requests), rows.Sum(u => u.Actions), rows.Sum(u => u.ComputeMs),
            new QuotaResponse(quota.Limit, quota.Limit - quota.Remaining, quota.Remaining, DateTimeOffset.UtcNow + quota.ResetAfter)));
    }
}
