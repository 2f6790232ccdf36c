using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using VlaCloud.Contracts;
using VlaCloud.Contracts.Wire;

namespace VlaCloud.Client;

public sealed partial class VlaCloudClient
{
    /// <summary>
    /// Opens a <c>/v1/stream</c> session and reads its <c>session</c> message. Refusals before the upgrade
    /// (unknown checkpoint, no free stream slot) surface as <see cref="VlaCloudApiException"/>.
    /// </summary>
    public async Task<StreamSession> ConnectStreamAsync(StreamOptions stream, CancellationToken cancellationToken = default)
    {
        var path = "v1/stream" + Query(("checkpoint", stream.Checkpoint), ("embodiment", stream.Embodiment),
            ("encoding", stream.Encoding == "json" ? null : stream.Encoding), ("mode", stream.Mode == "chunk" ? null : stream.Mode),
            ("replanEvery", stream.ReplanEvery), ("ensemble", stream.Ensemble is { } blend ? (blend ? "true" : "false") : null));
        var uri = new UriBuilder(new Uri(BaseUrl, path)) { Scheme = BaseUrl.Scheme == "https" ? "wss" : "ws" }.Uri;
        var headers = new Dictionary<string, string>();
        if (!string.IsNullOrEmpty(options.ApiKey)) headers["Authorization"] = $"Bearer {options.ApiKey}";
        WebSocket socket;
        try
        {
            socket = await (options.WebSocketConnector ?? ConnectClientWebSocketAsync)(uri, headers, cancellationToken);
        }
        catch (Exception e) when (e is WebSocketException or InvalidOperationException && !cancellationToken.IsCancellationRequested)
        {
            throw await RefusalAsync(path, e, cancellationToken);
        }
        var session = new StreamSession(socket, stream.Encoding == "msgpack");
        try
        {
            await session.ReadSessionAsync(cancellationToken);
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private static async Task<WebSocket> ConnectClientWebSocketAsync(Uri uri, IReadOnlyDictionary<string, string> headers, CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        foreach (var (name, value) in headers) socket.Options.SetRequestHeader(name, value);
        try
        {
            await socket.ConnectAsync(uri, cancellationToken);
            return socket;
        }
        catch (WebSocketException e) when (socket.HttpStatusCode != 0)
        {
            var status = socket.HttpStatusCode;
            socket.Dispose();
            throw new WebSocketException(WebSocketError.NotAWebSocket, $"HTTP {(int)status}", new HttpRequestException(e.Message, e, status));
        }
    }

    /// <summary>
    /// Why an upgrade failed: the same URL asked without the upgrade answers with the problem details
    /// (for a refused checkpoint or key); otherwise the status the upgrade got.
    /// </summary>
    private async Task<Exception> RefusalAsync(string path, Exception failure, CancellationToken cancellationToken)
    {
        var status = (failure.InnerException as HttpRequestException)?.StatusCode;
        try
        {
            using var timeout = WithTimeout(cancellationToken);
            using var response = await http.GetAsync(path, timeout.Token);
            if (!response.IsSuccessStatusCode && (status is null || response.StatusCode == status))
                return await ErrorAsync(response, timeout.Token);
        }
        catch (HttpRequestException)
        {
        }
        return status is { } code
            ? new VlaCloudApiException(code, new ApiProblem(null, code == HttpStatusCode.TooManyRequests ? "Too many streams" : code.ToString(), (int)code,
                code == HttpStatusCode.TooManyRequests ? "The tenant's concurrent streams are all in use; close one first." : failure.Message), null, failure)
            : failure;
    }
}

/// <summary>
/// A closed-loop control session over <c>/v1/stream</c>: send observations, receive action chunks (or single
/// actions in broker mode), ping, reset, close. JSON or MessagePack frames. One reader and one writer at a time.
/// </summary>
public sealed class StreamSession : IAsyncDisposable, IDisposable
{
    private readonly WebSocket socket;
    private readonly bool binary;
    private long nextId;

    internal StreamSession(WebSocket socket, bool binary)
    {
        this.socket = socket;
        this.binary = binary;
    }

    /// <summary>The session's metadata: checkpoint, embodiment, encoding and mode.</summary>
    public StreamSessionInfo Info { get; private set; } = null!;

    /// <summary>Why the server closed the session (e.g. 4401 key revoked, 4429 quota used up), once it has.</summary>
    public WebSocketCloseStatus? CloseStatus => socket.CloseStatus;

    /// <summary>The server's reason for closing.</summary>
    public string? CloseReason => socket.CloseStatusDescription;

    /// <summary>Whether the socket is still open.</summary>
    public bool IsOpen => socket.State == WebSocketState.Open;

    internal async Task ReadSessionAsync(CancellationToken cancellationToken)
    {
        var message = await ReceiveMapAsync(cancellationToken) ?? throw Closed("before its session message");
        Info = StreamWire.SessionFromMap(message);
    }

    /// <summary>Sends an observation; returns its message id. Read the answer with <see cref="ReceiveAsync"/>.</summary>
    public async Task<long> SendObservationAsync(ObservationInput observation, ActOptions? options = null, CancellationToken cancellationToken = default)
    {
        var id = Interlocked.Increment(ref nextId);
        await SendAsync(new StreamObservation(id, observation, options), cancellationToken);
        return id;
    }

    /// <summary>
    /// Sends an observation and waits for its answer: <see cref="StreamActions"/> (chunk mode) or
    /// <see cref="StreamAction"/> (broker mode). A refusal of the observation throws <see cref="VlaCloudApiException"/>.
    /// </summary>
    public async Task<StreamReply> ActAsync(ObservationInput observation, ActOptions? options = null, CancellationToken cancellationToken = default)
    {
        var id = await SendObservationAsync(observation, options, cancellationToken);
        var reply = await ReceiveForAsync(id, cancellationToken);
        return reply switch
        {
            StreamActions or StreamAction => reply,
            StreamError error => throw new VlaCloudApiException((HttpStatusCode)error.Status, new ApiProblem(null, error.Title, error.Status, error.Detail, null, error.Errors)),
            StreamBusy busy => throw new VlaCloudApiException(HttpStatusCode.ServiceUnavailable,
                new ApiProblem(null, "Inference is busy", 503, "Every inference queue is full; retry after the delay."), busy.RetryAfter),
            _ => throw new InvalidDataException($"Unexpected answer {reply.GetType().Name} to an observation."),
        };
    }

    /// <summary>Pings the server and waits for the pong; returns the round-trip time.</summary>
    public async Task<TimeSpan> PingAsync(CancellationToken cancellationToken = default)
    {
        var id = Interlocked.Increment(ref nextId);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        await SendAsync(new StreamPing(id), cancellationToken);
        await ReceiveForAsync(id, cancellationToken);
        return System.Diagnostics.Stopwatch.GetElapsedTime(started);
    }

    /// <summary>Starts a new episode: broker mode forgets its chunks. Waits for the acknowledgement.</summary>
    public async Task ResetAsync(CancellationToken cancellationToken = default)
    {
        var id = Interlocked.Increment(ref nextId);
        await SendAsync(new StreamReset(id), cancellationToken);
        await ReceiveForAsync(id, cancellationToken);
    }

    /// <summary>The next message from the server; null once the server closed the session (see <see cref="CloseStatus"/>).</summary>
    public async Task<StreamReply?> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        while (await ReceiveMapAsync(cancellationToken) is { } message)
            if (StreamWire.FromMap(message) is { } reply) return reply;   // an unknown type is a newer server's: skipped
        return null;
    }

    /// <summary>Ends the session politely: sends <c>close</c> and waits for the server's close frame.</summary>
    public async Task CloseAsync(CancellationToken cancellationToken = default)
    {
        if (socket.State != WebSocketState.Open) return;
        await SendAsync(new StreamClose(), cancellationToken);
        while (await ReceiveMapAsync(cancellationToken) is not null)
        {
        }
    }

    private async Task<StreamReply> ReceiveForAsync(long id, CancellationToken cancellationToken)
    {
        while (true)
        {
            var reply = await ReceiveAsync(cancellationToken) ?? throw Closed("while waiting for an answer");
            if (reply.Id == id) return reply;
        }
    }

    private VlaCloudApiException Closed(string when)
    {
        var code = (int?)socket.CloseStatus ?? 1006;
        var status = code switch
        {
            StreamCloseCodes.KeyRevoked => HttpStatusCode.Unauthorized,
            StreamCloseCodes.QuotaExhausted => HttpStatusCode.TooManyRequests,
            StreamCloseCodes.TryAgainLater => HttpStatusCode.ServiceUnavailable,
            _ => HttpStatusCode.BadGateway,
        };
        return new VlaCloudApiException(status, new ApiProblem(null, "Stream closed", (int)status,
            $"The server closed the session {when} (code {code}{(socket.CloseStatusDescription is { Length: > 0 } d ? $": {d}" : "")})."));
    }

    /// <summary>Sends a message through the wire format the server reads (<see cref="StreamWire"/>).</summary>
    private Task SendAsync(StreamRequest request, CancellationToken cancellationToken)
    {
        var message = StreamWire.ToMap(request);
        return socket.SendAsync(binary ? MsgPack.Serialize(message) : JsonSerializer.SerializeToUtf8Bytes(message),
            binary ? WebSocketMessageType.Binary : WebSocketMessageType.Text, true, cancellationToken);
    }

    /// <summary>The next whole message as a map with string keys; null when the socket closed.</summary>
    private async Task<Dictionary<string, object?>?> ReceiveMapAsync(CancellationToken cancellationToken)
    {
        if (socket.State is not (WebSocketState.Open or WebSocketState.CloseSent)) return null;
        var buffer = new ArrayBufferWriter<byte>(4096);
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer.GetMemory(64 * 1024), cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                if (socket.State == WebSocketState.CloseReceived)
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", cancellationToken);
                return null;
            }
            buffer.Advance(result.Count);
            if (!result.EndOfMessage) continue;
            var value = result.MessageType == WebSocketMessageType.Binary ? MsgPack.Deserialize(buffer.WrittenSpan) : FromJson(JsonNode.Parse(buffer.WrittenSpan));
            return StreamWire.Map(value);
        }
    }

    private static object? FromJson(JsonNode? node) => node switch
    {
        null => null,
        JsonObject obj => obj.ToDictionary(p => p.Key, p => FromJson(p.Value)),
        JsonArray array => array.Select(FromJson).ToList(),
        JsonValue value when value.TryGetValue<string>(out var s) => s,
        JsonValue value when value.TryGetValue<bool>(out var b) => b,
        JsonValue value when value.TryGetValue<long>(out var l) => l,
        JsonValue value when value.TryGetValue<double>(out var d) => d,
        _ => node.ToJsonString(),
    };

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (socket.State == WebSocketState.Open)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await CloseAsync(timeout.Token);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
        }
        socket.Dispose();
    }

    /// <inheritdoc />
    public void Dispose() => socket.Dispose();
}
