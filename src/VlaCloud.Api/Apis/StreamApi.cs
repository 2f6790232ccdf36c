using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using VlaCloud.Api.Acting;
using VlaCloud.Api.Auth;
using VlaCloud.Api.RateLimiting;
using VlaCloud.Contracts;
using VlaCloud.Registry;
using VlaCloud.Api.Limits;

namespace VlaCloud.Api.Apis;

/// <summary>
/// Closed-loop control over WebSocket: <c>/v1/stream</c> (VlaCloud's protocol, JSON or MessagePack) and
/// <c>/v1/openpi/{checkpoint}</c> (the wire protocol of openpi's <c>WebsocketClientPolicy</c>). A session is
/// bound to one checkpoint and takes one of the tenant's concurrent-stream slots; everything that can be
/// refused before the upgrade (no key, unknown checkpoint, no free slot) is answered as plain HTTP problem
/// details, and what goes wrong later closes the socket with a documented code (see <see cref="StreamMessages"/>).
/// </summary>
public static class StreamApi
{
    /// <summary>Maps both endpoints.</summary>
    public static IEndpointRouteBuilder MapStreamApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1").WithTags("Inference").RequireAuthorization(ApiScopes.Inference).RequireTenantRateLimit().RequireWebSocketOrigin();
        group.MapGet("/stream", StreamAsync)
            .WithName("Stream")
            .WithSummary("WebSocket control session (upgrade): session metadata first, then observation → actions per message; JSON text or MessagePack binary frames.")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .Produces(StatusCodes.Status101SwitchingProtocols);
        group.MapGet("/openpi/{**checkpoint}", OpenPiAsync)
            .WithName("OpenPiStream")
            .WithSummary("WebSocket endpoint for openpi's WebsocketClientPolicy (msgpack-numpy): metadata on connect, observation dict in, {actions, timings} out.")
            .Produces(StatusCodes.Status101SwitchingProtocols);
        return app;
    }

    /// <remarks>
    /// A WebSocket upgrade bound to one checkpoint: the server first sends a <c>session</c> message (session id,
    /// checkpoint, embodiment, encoding, mode); then every <c>observation</c> message gets an <c>actions</c> chunk (or, in
    /// broker mode, one <c>action</c> per control step), and <c>ping</c>, <c>reset</c> and <c>close</c> do what they say.
    /// Each observation takes a token of the request rate, as a REST request does. Messages, errors and close codes
    /// (4401 when the key is revoked or expires, 4429 when the compute quota is used up, 1013 when the session loses its
    /// stream slot): docs/acting.md.
    ///
    /// Refused before the upgrade, as problem details: 400 for a missing checkpoint, an unknown <c>encoding</c> or
    /// <c>mode</c>, a <c>replanEvery</c> outside 1 to the chunk length, or a request that is not a WebSocket upgrade; 403
    /// for a browser page of an origin that is not allowed, or a tenant whose <c>max_concurrent_streams</c> is 0; 404 for
    /// a checkpoint or embodiment the caller cannot see; 429 (<c>concurrency_limited</c>) when the tenant's concurrent
    /// streams are all open.
    /// </remarks>
    /// <param name="checkpoint">The checkpoint to run (required): an id, `model@vN` or `model@alias` (e.g. `sim-demo@production`).</param>
    /// <param name="embodiment">The embodiment (name or id) when the model has versions for several; omit otherwise.</param>
    /// <param name="encoding">`json` (text frames, the default) or `msgpack` (MessagePack in binary frames), for both directions.</param>
    /// <param name="mode">`chunk` (the default): each observation gets a whole action chunk; `broker`: send an observation every control step and get one action back, the server re-planning every `replanEvery` steps.</param>
    /// <param name="replanEvery">Broker mode: control steps between new chunks, 1 to the embodiment's chunk length (default: half of it).</param>
    /// <param name="ensemble">Broker mode: blend the overlapping chunks' actions for a step (the default, true) instead of taking the newest chunk's.</param>
    private static async Task<Results<EmptyHttpResult, ValidationProblem, ProblemHttpResult>> StreamAsync(
        [AsParameters] StreamServices services, string? checkpoint, string? embodiment, string? encoding, string? mode, int? replanEvery, bool? ensemble,
        CancellationToken cancellationToken)
    {
        var (context, actions, _, sessions, tenant, _, loggers, _) = services;
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrWhiteSpace(checkpoint)) errors["checkpoint"] = ["The checkpoint query parameter is required."];
        var binary = encoding switch { null or "json" => false, "msgpack" => true, _ => Invalid(errors, "encoding", "encoding must be json or msgpack.") };
        var broker = mode switch { null or "chunk" => false, "broker" => true, _ => Invalid(errors, "mode", "mode must be chunk or broker.") };
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);

        // The checkpoint is resolved before anything else is said, so another tenant's checkpoint is a 404
        // whether or not the request is an upgrade.
        var resolved = await ResolveAsync(actions, checkpoint!, embodiment, cancellationToken);
        if (resolved.Refusal is { } notFound) return notFound;
        var bound = resolved.Bound!;
        var chunkLength = bound.Embodiment.ChunkLength;
        var every = replanEvery ?? Math.Max(1, chunkLength / 2);
        if (broker && (every < 1 || every > chunkLength)) errors["replanEvery"] = [$"replanEvery must be 1..{chunkLength}."];
        if (!context.WebSockets.IsWebSocketRequest) errors["upgrade"] = ["This endpoint needs a WebSocket upgrade request."];
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);

        var (slot, refusal) = await AcquireSlotAsync(services);
        if (refusal is not null) return refusal;
        await using var _ = slot;
        using var socket = new GuardedWebSocket(await context.WebSockets.AcceptWebSocketAsync());
        using var live = sessions.Open(tenant.Identity!, slot, end => socket.EndAsync(end.CloseCode, end.Reason));
        var session = new StreamSession(socket, actions, bound, binary, broker ? new ChunkBroker(chunkLength, every, ensemble ?? true, binaryDims: BinaryActionDims(bound)) : null,
            loggers.CreateLogger("VlaCloud.Stream"));
        await session.RunAsync(context.RequestAborted);
        return TypedResults.Empty;
    }

    /// <summary>The checkpoint's binary action dimensions for the session's embodiment (its normalisation statistics' <c>binary_action_dims</c>).</summary>
    internal static int[] BinaryActionDims(BoundCheckpoint bound)
    {
        using var stats = System.Text.Json.JsonDocument.Parse(bound.Checkpoint.NormalizationStats);
        return stats.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object
               && stats.RootElement.TryGetProperty(bound.NormalizationKey, out var entry) && entry.ValueKind == System.Text.Json.JsonValueKind.Object
               && entry.TryGetProperty("binary_action_dims", out var dims) && dims.ValueKind == System.Text.Json.JsonValueKind.Array
            ? [.. dims.EnumerateArray().Where(d => d.TryGetInt32(out _)).Select(d => d.GetInt32())]
            : [];
    }

    /// <remarks>
    /// The wire protocol of openpi's <c>WebsocketClientPolicy</c>, so an openpi robot client can point at VlaCloud: a
    /// msgpack metadata map on connect, then per binary frame an observation dict (msgpack-numpy) in and
    /// <c>{"actions": [H, D] float32, "policy_timing", "server_timing"}</c> out. A failure sends the error as a text
    /// frame and closes (1007 not msgpack-numpy, 1008 an observation that does not fit, 1009 too big, 1013 the queue
    /// stayed full until the deadline, 1011 a server failure). Python usage: docs/python.md.
    ///
    /// Refused before the upgrade, as problem details: 400 for a request that is not a WebSocket upgrade; 403 for a
    /// browser page of an origin that is not allowed, or a tenant whose <c>max_concurrent_streams</c> is 0; 404 for a
    /// checkpoint or embodiment the caller cannot see; 429 (<c>concurrency_limited</c>) when the tenant's concurrent
    /// streams are all open.
    /// </remarks>
    /// <param name="checkpoint">The checkpoint to run, in the path: an id, `model@vN` or `model@alias` (e.g. `sim-demo@production`).</param>
    /// <param name="embodiment">The embodiment (name or id) when the model has versions for several; omit otherwise.</param>
    private static async Task<Results<EmptyHttpResult, ValidationProblem, ProblemHttpResult>> OpenPiAsync(
        [AsParameters] StreamServices services, string checkpoint, string? embodiment, CancellationToken cancellationToken)
    {
        var (context, actions, _, sessions, tenant, _, loggers, inference) = services;
        var resolved = await ResolveAsync(actions, checkpoint, embodiment, cancellationToken);
        if (resolved.Refusal is { } notFound) return notFound;
        if (!context.WebSockets.IsWebSocketRequest)
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["upgrade"] = ["This endpoint needs a WebSocket upgrade request."] });
        var (slot, refusal) = await AcquireSlotAsync(services);
        if (refusal is not null) return refusal;
        await using var _ = slot;
        using var socket = new GuardedWebSocket(await context.WebSockets.AcceptWebSocketAsync());
        using var live = sessions.Open(tenant.Identity!, slot, end => socket.EndAsync(end.CloseCode, end.Reason));
        await new OpenPiSession(socket, actions, resolved.Bound!, loggers.CreateLogger("VlaCloud.OpenPi"), inference.Value.DefaultTimeout).RunAsync(context.RequestAborted);
        return TypedResults.Empty;
    }

    private static async Task<(BoundCheckpoint? Bound, Results<EmptyHttpResult, ValidationProblem, ProblemHttpResult>? Refusal)> ResolveAsync(
        ActionService actions, string checkpoint, string? embodiment, CancellationToken cancellationToken)
    {
        try
        {
            return (await actions.ResolveAsync(checkpoint, embodiment, cancellationToken), null);
        }
        catch (RegistryException e)
        {
            return (null, ApiResults.Problem(e));
        }
    }

    private static async Task<(StreamSlot? Slot, Results<EmptyHttpResult, ValidationProblem, ProblemHttpResult>? Refusal)> AcquireSlotAsync(
        StreamServices services)
    {
        var tenant = services.Tenant;
        // max_concurrent_streams 0 is a tenant that may not stream at all: a standing refusal, not a full bucket to wait on.
        if (tenant.Limits.MaxConcurrentStreams <= 0)
            return (null, TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Streams are not enabled",
                detail: "The tenant's max_concurrent_streams is 0: it may use the REST endpoints, not streams."));
        var (decision, slot) = await services.Slots.TryAcquireAsync(tenant.TenantId!.Value, tenant.Limits, services.Limits.Value.StreamSlotLease);
        return slot is not null
            ? (slot, null)
            : (null, TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many streams", type: ProblemTypes.ConcurrencyLimited,
                detail: $"The tenant already has {decision.Limit} concurrent streams open; close one first."));
    }

    private static bool Invalid(Dictionary<string, string[]> errors, string key, string message)
    {
        errors[key] = [message];
        return false;
    }
}

/// <summary>
/// What both stream handlers take from the request and the container, bound with <c>[AsParameters]</c> so
/// the handlers' own parameters are the query and route values that the OpenAPI document describes.
/// </summary>
internal sealed record StreamServices(
    HttpContext Context, ActionService Actions, StreamSlots Slots, LiveSessions Sessions, CurrentTenant Tenant,
    IOptions<LimitsOptions> Limits, ILoggerFactory Loggers, IOptions<VlaCloud.Inference.InferenceOptions> Inference);
