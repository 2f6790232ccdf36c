using System.Buffers;
using System.Diagnostics;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using VlaCloud.Api.Acting;
using VlaCloud.Api.Auth;
using VlaCloud.Api.RateLimiting;
using VlaCloud.Contracts;
using VlaCloud.Contracts.Wire;
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
            .WithDescription("Messages, close codes and errors: docs/acting.md. Refusals before the upgrade are problem details.")
            .Produces(StatusCodes.Status101SwitchingProtocols);
        group.MapGet("/openpi/{**checkpoint}", OpenPiAsync)
            .WithName("OpenPiStream")
            .WithSummary("WebSocket endpoint for openpi's WebsocketClientPolicy (msgpack-numpy): metadata on connect, observation dict in, {actions, timings} out.")
            .Produces(StatusCodes.Status101SwitchingProtocols);
        return app;
    }

    private static async Task<Results<EmptyHttpResult, ValidationProblem, ProblemHttpResult>> StreamAsync(
        HttpContext context, ActionService actions, StreamSlots slots, LiveSessions sessions, CurrentTenant tenant, IOptions<LimitsOptions> limits, ILoggerFactory loggers,
        string? checkpoint, string? embodiment, string? encoding, string? mode, int? replanEvery, bool? ensemble, CancellationToken cancellationToken)
    {
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

        var (slot, refusal) = await AcquireSlotAsync(slots, tenant, limits.Value.StreamSlotLease);
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

    private static async Task<Results<EmptyHttpResult, ValidationProblem, ProblemHttpResult>> OpenPiAsync(
        HttpContext context, ActionService actions, StreamSlots slots, LiveSessions sessions, CurrentTenant tenant, IOptions<LimitsOptions> limits, ILoggerFactory loggers,
        IOptions<VlaCloud.Inference.InferenceOptions> inference, string checkpoint, string? embodiment, CancellationToken cancellationToken)
    {
        var resolved = await ResolveAsync(actions, checkpoint, embodiment, cancellationToken);
        if (resolved.Refusal is { } notFound) return notFound;
        if (!context.WebSockets.IsWebSocketRequest)
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["upgrade"] = ["This endpoint needs a WebSocket upgrade request."] });
        var (slot, refusal) = await AcquireSlotAsync(slots, tenant, limits.Value.StreamSlotLease);
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
        StreamSlots slots, CurrentTenant tenant, TimeSpan lease)
    {
        // max_concurrent_streams 0 is a tenant that may not stream at all: a standing refusal, not a full bucket to wait on.
        if (tenant.Limits.MaxConcurrentStreams <= 0)
            return (null, TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Streams are not enabled",
                detail: "The tenant's max_concurrent_streams is 0: it may use the REST endpoints, not streams."));
        var (decision, slot) = await slots.TryAcquireAsync(tenant.TenantId!.Value, tenant.Limits, lease);
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

/// <summary>Reads whole messages from a socket, up to a size limit.</summary>
internal static class WebSocketFrames
{
    public static async Task<(byte[]? Message, WebSocketMessageType Type, bool TooBig)> ReceiveAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        while (true)
        {
            var memory = buffer.GetMemory(64 * 1024);
            var result = await socket.ReceiveAsync(memory, cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close) return (null, result.MessageType, false);
            buffer.Advance(result.Count);
            if (buffer.WrittenCount > StreamMessages.MaxMessageBytes) return (null, result.MessageType, true);
            if (result.EndOfMessage) return (buffer.WrittenSpan.ToArray(), result.MessageType, false);
        }
    }

    public static Task CloseAsync(WebSocket socket, int code, string reason) =>
        socket.State is WebSocketState.Open or WebSocketState.CloseReceived
            ? socket.CloseAsync((WebSocketCloseStatus)code, reason, CancellationToken.None)
            : Task.CompletedTask;
}

/// <summary>One <c>/v1/stream</c> session: its own broker state, its checkpoint, its encoding.</summary>
internal sealed class StreamSession(WebSocket socket, ActionService actions, BoundCheckpoint bound, bool binary, ChunkBroker? broker, ILogger logger)
{
    private readonly string sessionId = Guid.NewGuid().ToString("N");

    public async Task RunAsync(CancellationToken aborted)
    {
        var embodiment = bound.Embodiment;
        await SendAsync(StreamWire.ToMap(new StreamSessionInfo(sessionId, bound.Describe(),
            new StreamEmbodiment(embodiment.Name, embodiment.ActionDim, embodiment.StateDim, embodiment.ActionNames,
                [.. embodiment.Cameras.Select(c => new CameraDto(c.Name, c.Width, c.Height))], embodiment.ControlHz, embodiment.ChunkLength),
            binary ? "msgpack" : "json", broker is null ? "chunk" : "broker")), aborted);

        try
        {
            while (socket.State == WebSocketState.Open)
            {
                var (frame, type, tooBig) = await WebSocketFrames.ReceiveAsync(socket, aborted);
                if (type == WebSocketMessageType.Close) break;
                if (tooBig)
                {
                    await WebSocketFrames.CloseAsync(socket, StreamMessages.MessageTooBig, $"Messages are limited to {StreamMessages.MaxMessageBytes} bytes.");
                    return;
                }
                if ((type == WebSocketMessageType.Binary) != binary)
                {
                    await WebSocketFrames.CloseAsync(socket, StreamMessages.UnsupportedData, binary ? "This session speaks MessagePack in binary frames." : "This session speaks JSON in text frames.");
                    return;
                }
                var message = StreamMessages.Decode(frame, binary, out var error);
                if (message is null)
                {
                    await WebSocketFrames.CloseAsync(socket, StreamMessages.InvalidPayload, Truncate(error!));
                    return;
                }
                if (!await HandleAsync(message, aborted)) return;
            }
            await WebSocketFrames.CloseAsync(socket, (int)WebSocketCloseStatus.NormalClosure, "bye");
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
        }
        catch (WebSocketException e)
        {
            logger.LogInformation("Stream {Session} ended: {Reason}", sessionId, e.Message);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Stream {Session} failed", sessionId);
            await WebSocketFrames.CloseAsync(socket, StreamMessages.InternalError, "Internal server error.");
        }
    }

    /// <summary>Handles one message; false when the session must end.</summary>
    private async Task<bool> HandleAsync(Dictionary<string, object?> message, CancellationToken aborted)
    {
        var errors = new Dictionary<string, string[]>();
        var request = StreamWire.RequestFromMap(message, errors);
        var id = message.GetValueOrDefault("id");
        switch (request)
        {
            case StreamPing:
                await ReplyAsync(new StreamPong(null), id, aborted);
                return true;
            case StreamReset:
                broker?.Reset();
                await ReplyAsync(new StreamResetDone(null), id, aborted);
                return true;
            case StreamClose:
                await WebSocketFrames.CloseAsync(socket, (int)WebSocketCloseStatus.NormalClosure, "closed by the client");
                return false;
            case StreamObservation observation when errors.Count > 0:
                await ErrorAsync(observation.Id, StatusCodes.Status400BadRequest, "Invalid observation", errors, aborted);
                return true;
            case StreamObservation observation:
                return await ObserveAsync(observation.Observation, observation.Options, observation.Id, aborted);
            default:
                await ErrorAsync(id, StatusCodes.Status400BadRequest, "Unknown message type",
                    new() { ["type"] = ["type must be observation, ping, reset or close."] }, aborted);
                return true;
        }
    }

    private async Task<bool> ObserveAsync(ObservationInput observation, ActOptions? options, object? id, CancellationToken aborted)
    {
        if (broker is not null && !broker.NeedsPlan)
        {
            await ReplyAsync(new StreamAction(null, broker.Step, false, broker.NextAction(), null), id, aborted);
            return true;
        }

        var outcome = await actions.TakeStreamTokenAsync() ?? await actions.ActAsync(bound, observation, options, aborted);
        switch (outcome)
        {
            case ActOutcome.Success { Response: var response }:
                if (broker is null)
                    await ReplyAsync(new StreamActions(null, response.Actions, response.Seed, response.Timing, response.Spatial, response.Guide), id, aborted);
                else
                {
                    broker.AddChunk(ToChunk(response.Actions));
                    var step = broker.Step;
                    await ReplyAsync(new StreamAction(null, step, true, broker.NextAction(), response.Timing), id, aborted);
                }
                return true;
            case ActOutcome.Invalid invalid:
                await ErrorAsync(id, StatusCodes.Status400BadRequest, "The observation does not fit the checkpoint's embodiment.", invalid.Errors, aborted);
                return true;
            case ActOutcome.Busy busy:
                await ReplyAsync(new StreamBusy(null, busy.RetryAfter), id, aborted);
                return true;
            case ActOutcome.ShareExceeded share:
                await ReplyAsync(new StreamError(null, StatusCodes.Status429TooManyRequests, "Inference share exceeded", share.Detail, null,
                    ActApi.ShareExceededCode, share.RetryAfter), id, aborted);
                return true;
            case ActOutcome.RateLimited limited:
                await ReplyAsync(new StreamError(null, StatusCodes.Status429TooManyRequests, "Too many requests",
                    $"The {limited.Decision.Reason ?? "rate"} limit is reached; retry later.", null, RetryAfter: limited.Decision.RetryAfter), id, aborted);
                return true;
            case ActOutcome.DeadlineExceeded deadline:
                await ErrorAsync(id, StatusCodes.Status504GatewayTimeout, "Deadline exceeded", null, aborted, deadline.Detail);
                return true;
            case ActOutcome.Unavailable unavailable:
                await ReplyAsync(new StreamError(null, StatusCodes.Status503ServiceUnavailable, "Service unavailable", unavailable.Detail, null,
                    RetryAfter: unavailable.RetryAfter), id, aborted);
                return true;
            case ActOutcome.Unservable unservable:
                await ErrorAsync(id, StatusCodes.Status422UnprocessableEntity, "Checkpoint cannot be served", null, aborted, unservable.Detail);
                return true;
            case ActOutcome.QuotaExceeded:
                await WebSocketFrames.CloseAsync(socket, StreamMessages.QuotaExhausted, "The monthly compute quota is used up.");
                return false;
            default:
                throw new InvalidOperationException($"Unknown outcome {outcome.GetType().Name}.");
        }
    }

    private static float[,] ToChunk(float[][] rows)
    {
        var chunk = new float[rows.Length, rows.Length == 0 ? 0 : rows[0].Length];
        for (var i = 0; i < rows.Length; i++)
            for (var d = 0; d < rows[i].Length; d++) chunk[i, d] = rows[i][d];
        return chunk;
    }

    private Task ErrorAsync(object? id, int status, string title, Dictionary<string, string[]>? errors, CancellationToken cancellationToken, string? detail = null) =>
        ReplyAsync(new StreamError(null, status, title, detail, errors), id, cancellationToken);

    /// <summary>Sends a reply through the wire format the SDK reads (<see cref="StreamWire"/>), echoing the client's id as it was sent.</summary>
    private Task ReplyAsync(StreamReply reply, object? id, CancellationToken cancellationToken) => SendAsync(StreamWire.ToMap(reply, id), cancellationToken);

    private Task SendAsync(Dictionary<string, object?> message, CancellationToken cancellationToken) =>
        socket.SendAsync(StreamMessages.Encode(message, binary), binary ? WebSocketMessageType.Binary : WebSocketMessageType.Text, true, cancellationToken);

    internal static string Truncate(string reason) => reason.Length <= 120 ? reason : reason[..120];
}

/// <summary>
/// One openpi session, as <c>openpi_client.WebsocketClientPolicy</c> expects: a msgpack metadata map on
/// connect; then per binary frame an observation dict (msgpack-numpy) in and
/// <c>{"actions": ndarray [H, D] float32, "policy_timing": {...}, "server_timing": {...}}</c> out. A failure
/// sends the error as a text frame and closes, as openpi's server does (its client raises the text): with 1007 for a
/// frame that is not msgpack-numpy, 1008 for an observation that does not fit, 1009 for one too big, 1013 when the
/// queue stayed full until the observation's deadline (it waits for a place until then), and 1011
/// only for the server's own failures.
/// </summary>
internal sealed class OpenPiSession(WebSocket socket, ActionService actions, BoundCheckpoint bound, ILogger logger, TimeSpan deadline)
{
    public async Task RunAsync(CancellationToken aborted)
    {
        var embodiment = bound.Embodiment;
        await SendAsync(new Dictionary<string, object?>
        {
            ["checkpoint"] = $"{bound.Checkpoint.ModelName}@v{bound.Checkpoint.Version}",
            ["checkpoint_id"] = bound.Checkpoint.Id.ToString(),
            ["embodiment"] = embodiment.Name,
            ["action_dim"] = embodiment.ActionDim,
            ["action_horizon"] = embodiment.ChunkLength,
            ["state_dim"] = embodiment.StateDim,
            ["cameras"] = embodiment.Cameras.Select(c => c.Name).ToList(),
        }, aborted);

        double? previousTotalMs = null;
        try
        {
            while (socket.State == WebSocketState.Open)
            {
                var (frame, type, tooBig) = await WebSocketFrames.ReceiveAsync(socket, aborted);
                if (type == WebSocketMessageType.Close) break;
                var started = Stopwatch.GetTimestamp();
                if (tooBig || type != WebSocketMessageType.Binary || frame is null)
                {
                    await FailAsync(tooBig ? $"Messages are limited to {StreamMessages.MaxMessageBytes} bytes." : "openpi frames are msgpack in binary frames.",
                        tooBig ? StreamMessages.MessageTooBig : StreamMessages.UnsupportedData);
                    return;
                }
                Dictionary<object, object?> observation;
                try
                {
                    observation = NumpyArray.FromWireTree(MsgPack.Deserialize(frame, DecodeBudget.ForMessage(frame.Length, StreamMessages.MaxExpansion)))
                                      as Dictionary<object, object?>
                                  ?? throw new FormatException("The observation must be a dict.");
                }
                catch (FormatException e)
                {
                    await FailAsync($"Invalid observation: {e.Message}", StreamMessages.InvalidPayload);
                    return;
                }

                if (observation.TryGetValue("__ctrl__", out var control))
                {
                    // Episode markers of newer openpi clients: acknowledged, nothing to compute.
                    await SendAsync(new Dictionary<string, object?> { ["__ack__"] = control as string ?? "ignored" }, aborted);
                    continue;
                }

                var errors = new Dictionary<string, string[]>();
                var input = OpenPiObservationMapper.Map(observation, embodiment, errors);
                var outcome = input is null ? new ActOutcome.Invalid(errors) : await actions.TakeStreamTokenAsync() ?? await actions.ActAsync(bound, input, null, aborted);
                // openpi's client raises on any error reply, so refusing on a full queue would end the robot's loop (/v1/stream
                // can answer "busy" instead; openpi has no such message). The observation waits for a place in the queue,
                // trying again when the queue says, until its deadline (a request's default one); only then 1013.
                while (outcome is ActOutcome.Busy busy && input is not null && Stopwatch.GetElapsedTime(started) < deadline)
                {
                    var left = deadline - Stopwatch.GetElapsedTime(started);
                    var wait = busy.RetryAfter < TimeSpan.FromMilliseconds(20) ? TimeSpan.FromMilliseconds(20) : busy.RetryAfter;
                    await Task.Delay(wait < left ? wait : left, aborted);
                    outcome = await actions.ActAsync(bound, input, null, aborted);
                }
                if (outcome is not ActOutcome.Success { Response: var response })
                {
                    await FailAsync(Describe(outcome), outcome switch
                    {
                        ActOutcome.Invalid => StreamMessages.PolicyViolation,
                        ActOutcome.Busy or ActOutcome.ShareExceeded or ActOutcome.RateLimited => StreamMessages.TryAgainLater,
                        ActOutcome.QuotaExceeded => StreamMessages.QuotaExhausted,
                        _ => StreamMessages.InternalError,
                    });
                    return;
                }

                var serverTiming = new Dictionary<string, object?> { ["infer_ms"] = response.Timing.TotalMs };
                if (previousTotalMs is { } previous) serverTiming["prev_total_ms"] = previous;
                await SendAsync(new Dictionary<string, object?>
                {
                    ["actions"] = NumpyArray.FromFloats(response.Actions.SelectMany(r => r).ToArray(), response.Actions.Length, response.Actions.Length == 0 ? 0 : response.Actions[0].Length),
                    ["policy_timing"] = new Dictionary<string, object?> { ["infer_ms"] = response.Timing.ComputeMs },
                    ["server_timing"] = serverTiming,
                }, aborted);
                previousTotalMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            }
            await WebSocketFrames.CloseAsync(socket, (int)WebSocketCloseStatus.NormalClosure, "bye");
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
        }
        catch (WebSocketException e)
        {
            logger.LogInformation("openpi session ended: {Reason}", e.Message);
        }
        catch (Exception e)
        {
            logger.LogError(e, "openpi session failed");
            await FailAsync("Internal server error.", StreamMessages.InternalError);
        }
    }

    private static string Describe(ActOutcome outcome) => outcome switch
    {
        ActOutcome.Invalid invalid => "Invalid observation:\n" + string.Join("\n", invalid.Errors.Select(e => $"  {e.Key}: {string.Join(" ", e.Value)}")),
        ActOutcome.Busy busy => $"Server busy: every inference queue is full; retry in {busy.RetryAfter.TotalSeconds:0.#} s.",
        ActOutcome.ShareExceeded share => $"{ActApi.ShareExceededCode}: {share.Detail}",
        ActOutcome.RateLimited limited => $"Too many requests: the {limited.Decision.Reason ?? "rate"} limit is reached; retry in {Math.Max(1, limited.Decision.RetryAfter.TotalSeconds):0.#} s.",
        ActOutcome.DeadlineExceeded deadline => deadline.Detail,
        ActOutcome.QuotaExceeded => "The tenant's monthly compute quota is used up.",
        ActOutcome.Unavailable unavailable => unavailable.Detail,
        ActOutcome.Unservable unservable => unservable.Detail,
        _ => outcome.ToString(),
    };

    private async Task FailAsync(string message, int closeCode)
    {
        if (socket.State != WebSocketState.Open) return;
        await socket.SendAsync(System.Text.Encoding.UTF8.GetBytes(message), WebSocketMessageType.Text, true, CancellationToken.None);
        await WebSocketFrames.CloseAsync(socket, closeCode, closeCode == StreamMessages.InternalError
            ? "Error in inference server. Details in the previous frame."
            : "Request refused. Details in the previous frame.");
    }

    private Task SendAsync(Dictionary<string, object?> message, CancellationToken cancellationToken) =>
        socket.SendAsync(MsgPack.Serialize(NumpyArray.ToWireTree(message)), WebSocketMessageType.Binary, true, cancellationToken);
}
