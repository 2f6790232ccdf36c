using System.Globalization;
using Microsoft.Extensions.Options;
using VlaCloud.Api.Acting;
using VlaCloud.Api.Auth;
using VlaCloud.Registry;
using VlaCloud.Api.Limits;
using VlaCloud.Api.Usage;

namespace VlaCloud.Api.RateLimiting;

/// <summary>
/// Takes a token from the caller's tenant and key buckets before the handler runs; on refusal answers 429
/// with <c>Retry-After</c>. Every answer carries the structured <c>RateLimit-Policy</c> and <c>RateLimit</c> headers of the
/// IETF draft (draft-ietf-httpapi-ratelimit-headers-09): <c>RateLimit-Policy: "requests";q=BURST</c> and
/// <c>RateLimit: "requests";r=REMAINING;t=SECONDS</c>. When Redis does not answer, the
/// request is refused with 503 and <c>Retry-After</c> at once (or let through, with
/// <see cref="LimitsOptions.RateLimitFailOpen"/>). Platform administrators' keys share one bucket of their own. On endpoints
/// marked with <see cref="ComputeCounterPrefetch.Marker"/> the same script reads the tenant's compute counter, which the
/// handler's quota check then uses instead of asking Redis again.
/// </summary>
internal sealed class TenantRateLimitFilter(RequestRateLimiter limiter, CurrentTenant tenant, IOptions<LimitsOptions> options) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        if (tenant.Identity is not { } identity) return await next(context);
        LimitDecision decision;
        try
        {
            if (identity.TenantId is { } tenantId && context.HttpContext.GetEndpoint()?.Metadata.GetMetadata<ComputeCounterPrefetch.Marker>() is not null)
            {
                var services = context.HttpContext.RequestServices;
                var probe = services.GetRequiredService<IUsageMeter>().ComputeCounter(tenantId);
                (decision, var counter) = await limiter.TryAcquireAsync(tenantId, identity.KeyId, tenant.Limits, probe.Key);
                if (decision.Allowed) services.GetRequiredService<ComputeCounterPrefetch>().Set(new ComputeCounterRead(probe, counter));
            }
            else
                decision = await limiter.TryAcquireAsync(identity.TenantId ?? Guid.Empty, identity.KeyId, tenant.Limits);
        }
        catch (Exception e) when (DependencyFailure.IsUnavailable(e) && options.Value.RateLimitFailOpen)
        {
            // Configured to serve unlimited rather than not at all while Redis is away; quotas still refuse.
            return await next(context);
        }
        var response = context.HttpContext.Response;
        WriteHeaders(response, decision);
        if (decision.Allowed) return await next(context);
        return TooManyRequests(response, decision);
    }

    /// <summary>The policy name of the request-rate limit in the <c>RateLimit</c> headers.</summary>
    public const string RequestsPolicy = "requests";

    /// <summary>The policy name of the monthly compute quota (milliseconds) in the <c>RateLimit</c> headers.</summary>
    public const string ComputePolicy = "compute";

    /// <summary>
    /// Writes <paramref name="decision"/> as <c>RateLimit-Policy</c> (the quota <c>q</c>) and <c>RateLimit</c> (what is left,
    /// <c>r</c>, and the seconds until the quota is whole again, <c>t</c>), structured fields named by
    /// <paramref name="policy"/> as the current IETF draft has them; the older <c>RateLimit-Limit/-Remaining/-Reset</c>
    /// trio is not sent.
    /// </summary>
    public static void WriteHeaders(HttpResponse response, LimitDecision decision, string policy = RequestsPolicy)
    {
        var invariant = CultureInfo.InvariantCulture;
        response.Headers["RateLimit-Policy"] = string.Create(invariant, $"\"{policy}\";q={decision.Limit}");
        response.Headers["RateLimit"] = string.Create(invariant, $"\"{policy}\";r={decision.Remaining};t={Seconds(decision.ResetAfter)}");
    }

    /// <summary>The 429 problem (of <paramref name="type"/>) for a refused <paramref name="decision"/>, with <c>Retry-After</c> set.</summary>
    public static IResult TooManyRequests(HttpResponse response, LimitDecision decision, string type = ProblemTypes.RateLimited)
    {
        response.Headers.RetryAfter = Math.Max(1, Seconds(decision.RetryAfter)).ToString(CultureInfo.InvariantCulture);
        return TypedResults.Problem(
            statusCode: StatusCodes.Status429TooManyRequests,
            title: "Too many requests",
            type: type,
            detail: $"The {decision.Reason ?? "rate"} limit is reached; retry after {Math.Max(1, Seconds(decision.RetryAfter))} s.");
    }

    private static long Seconds(TimeSpan span) => (long)Math.Ceiling(Math.Max(0, span.TotalSeconds));
}

/// <summary>Applies the tenant rate limit to a route group.</summary>
public static class TenantRateLimitExtensions
{
    /// <summary>Limits every endpoint of <paramref name="builder"/> by the caller's tenant and key buckets.</summary>
    public static TBuilder RequireTenantRateLimit<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter<TBuilder, TenantRateLimitFilter>().WithMetadata(TenantRateLimitMetadata.Instance);
}

/// <summary>Marks an endpoint the tenant rate limit applies to, so the OpenAPI document lists its 429, 503 and RateLimit headers.</summary>
public sealed class TenantRateLimitMetadata
{
    /// <summary>The one instance.</summary>
    public static readonly TenantRateLimitMetadata Instance = new();

    private TenantRateLimitMetadata() { }
}
