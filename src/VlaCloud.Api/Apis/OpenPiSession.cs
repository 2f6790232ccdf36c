using System.Diagnostics;
using System.Net.WebSockets;
using VlaCloud.Api.Acting;
using VlaCloud.Contracts;
using VlaCloud.Contracts.Wire;

namespace VlaCloud.Api.Apis;

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
    // The connection's session: an unchanged observation reuses its last prefix (InferenceOptions.SessionPrefixes).
    private readonly string sessionId = Guid.NewGuid().ToString("N");

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
                var outcome = input is null ? new ActOutcome.Invalid(errors) : await actions.TakeStreamTokenAsync() ?? await actions.ActAsync(bound, input, null, aborted, sessionId);
                // openpi's client raises on any error reply, so refusing on a full queue would end the robot's loop (/v1/stream
                // can answer "busy" instead; openpi has no such message). The observation waits for a place in the queue,
                // trying again when the queue says, until its deadline (a request's default one); only then 1013.
                while (outcome is ActOutcome.Busy busy && input is not null && Stopwatch.GetElapsedTime(started) < deadline)
                {
                    var left = deadline - Stopwatch.GetElapsedTime(started);
                    var wait = busy.RetryAfter < TimeSpan.FromMilliseconds(20) ? TimeSpan.FromMilliseconds(20) : busy.RetryAfter;
                    await Task.Delay(wait < left ? wait : left, aborted);
                    outcome = await actions.ActAsync(bound, input, null, aborted, sessionId);
                }
                if (outcome is not ActOutcome.Success response)
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
                    ["actions"] = ActionChunkWire.ToNumpy(response.Actions),
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
