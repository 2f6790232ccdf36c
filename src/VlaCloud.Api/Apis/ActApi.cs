using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using VlaCloud.Api.Acting;
using VlaCloud.Api.RateLimiting;
using VlaCloud.Contracts;
using VlaCloud.Registry;

namespace VlaCloud.Api.Apis;

/// <summary><c>POST /v1/act</c>: one observation in, one action chunk out.</summary>
public static class ActApi
{
    /// <summary>Maps the group.</summary>
    public static IEndpointRouteBuilder MapActApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1").WithTags("Inference").RequireAuthorization(ApiScopes.Inference).RequireTenantRateLimit();
        group.MapPost("/act", ActAsync)
            .WithMetadata(ComputeCounterPrefetch.Marker.Instance)
            .WithName("Act")
            .WithSummary("Computes an action chunk for one observation with a checkpoint (id, model@vN or model@alias), batched with other requests.")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .ProducesProblem(StatusCodes.Status504GatewayTimeout);
        return app;
    }

    /// <remarks>
    /// Resolves <c>checkpoint</c> as the caller's tenant sees it (its own versions and aliases before public ones;
    /// <c>embodiment</c> picks one when the model has versions for several), checks the observation against the
    /// checkpoint's embodiment (a decodable image per camera, the state's length, the instruction) and the options, and
    /// queues it for batched inference with other requests. The answer is one action chunk in the embodiment's units,
    /// with timings.
    ///
    /// Errors: 400 for a body or observation that does not fit (<c>errors</c> names the fields); 404 for a checkpoint or
    /// embodiment the caller cannot see; 422 for a checkpoint that can never be served (corrupt, not a policy, too large
    /// for a device); 429 with Retry-After past the request rate, the monthly compute quota (<c>quota_exceeded</c>) or
    /// the tenant's share of the inference queue (<c>inference_share_exceeded</c>); 503 with Retry-After when every
    /// inference queue is full or the checkpoint cannot be loaded now; 504 when <c>options.timeout_ms</c> passes before
    /// the chunk is computed.
    /// </remarks>
    private static async Task<Results<Ok<ActResponse>, ValidationProblem, ProblemHttpResult>> ActAsync(
        ActRequest request, ActionService actions, HttpResponse response, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(request.Checkpoint))
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["checkpoint"] = ["The checkpoint reference is required."] });
        BoundCheckpoint bound;
        try
        {
            bound = await actions.ResolveAsync(request.Checkpoint, request.Embodiment, cancellationToken);
        }
        catch (RegistryException e)
        {
            return ApiResults.Problem(e);
        }
        return ToHttp(await actions.ActAsync(bound, request.Observation, request.Options, cancellationToken), response);
    }

    /// <summary>The <c>code</c> of the 429 problem for a tenant over its share of the inference queue.</summary>
    public const string ShareExceededCode = "inference_share_exceeded";

    /// <summary>The problem type of that 429.</summary>
    public const string ShareExceededType = ProblemTypes.InferenceShareExceeded;

    /// <summary>The HTTP answer of an outcome.</summary>
    internal static Results<Ok<ActResponse>, ValidationProblem, ProblemHttpResult> ToHttp(ActOutcome outcome, HttpResponse response)
    {
        switch (outcome)
        {
            case ActOutcome.Success success:
                return TypedResults.Ok(success.ToResponse());
            case ActOutcome.Invalid invalid:
                return TypedResults.ValidationProblem(invalid.Errors, title: "The observation does not fit the checkpoint's embodiment.");
            case ActOutcome.Busy busy:
                response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(busy.RetryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
                return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Inference is busy", type: ProblemTypes.Busy,
                    detail: "Every inference queue is full; retry after the Retry-After delay.");
            case ActOutcome.ShareExceeded share:
                response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(share.RetryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
                return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Inference share exceeded", detail: share.Detail,
                    type: ShareExceededType, extensions: new Dictionary<string, object?> { ["code"] = ShareExceededCode });
            case ActOutcome.RateLimited limited:
                TenantRateLimitFilter.WriteHeaders(response, limited.Decision);
                return (ProblemHttpResult)TenantRateLimitFilter.TooManyRequests(response, limited.Decision);
            case ActOutcome.DeadlineExceeded deadline:
                return TypedResults.Problem(statusCode: StatusCodes.Status504GatewayTimeout, title: "Deadline exceeded", detail: deadline.Detail);
            case ActOutcome.QuotaExceeded quota:
                TenantRateLimitFilter.WriteHeaders(response, quota.Decision, TenantRateLimitFilter.ComputePolicy);
                return (ProblemHttpResult)TenantRateLimitFilter.TooManyRequests(response, quota.Decision, ProblemTypes.QuotaExceeded);
            case ActOutcome.Unavailable unavailable:
                response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(unavailable.RetryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
                return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Service unavailable", detail: unavailable.Detail);
            case ActOutcome.Unservable unservable:
                return TypedResults.Problem(statusCode: StatusCodes.Status422UnprocessableEntity, title: "Checkpoint cannot be served", detail: unservable.Detail);
            default:
                throw new InvalidOperationException($"Unknown outcome {outcome.GetType().Name}.");
        }
    }
}
