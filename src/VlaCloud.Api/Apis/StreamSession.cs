using System.Net.WebSockets;
using VlaCloud.Api.Acting;
using VlaCloud.Contracts;
using VlaCloud.Contracts.Wire;

namespace VlaCloud.Api.Apis;

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

        var outcome = await actions.TakeStreamTokenAsync() ?? await actions.ActAsync(bound, observation, options, aborted, sessionId);
        switch (outcome)
        {
            case ActOutcome.Success response:
                if (broker is null)
                    await ReplyAsync(new StreamActions(null, ActionChunkWire.ToRows(response.Actions), response.Seed, response.Timing, response.Spatial, response.Guide), id, aborted);
                else
                {
                    broker.AddChunk(response.Actions);
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

    private Task ErrorAsync(object? id, int status, string title, Dictionary<string, string[]>? errors, CancellationToken cancellationToken, string? detail = null) =>
        ReplyAsync(new StreamError(null, status, title, detail, errors), id, cancellationToken);

    /// <summary>Sends a reply through the wire format the SDK reads (<see cref="StreamWire"/>), echoing the client's id as it was sent.</summary>
    private Task ReplyAsync(StreamReply reply, object? id, CancellationToken cancellationToken) => SendAsync(StreamWire.ToMap(reply, id), cancellationToken);

    private Task SendAsync(Dictionary<string, object?> message, CancellationToken cancellationToken) =>
        socket.SendAsync(StreamMessages.Encode(message, binary), binary ? WebSocketMessageType.Binary : WebSocketMessageType.Text, true, cancellationToken);

    internal static string Truncate(string reason) => reason.Length <= 120 ? reason : reason[..120];
}
