using System.Net.WebSockets;

namespace VlaCloud.Api.Acting;

/// <summary>
/// A server WebSocket that the server may also close from outside its session loop (a revoked key, a lost slot):
/// sends and closes take turns (a WebSocket allows one send at a time), and a close the server starts aborts the
/// connection if the client has not answered it within <see cref="CloseGrace"/>, so the session loop's pending receive
/// ends either way.
/// </summary>
internal sealed class GuardedWebSocket(WebSocket inner) : WebSocket
{
    /// <summary>How long a client has to answer a close the server started before the connection is aborted.</summary>
    public static readonly TimeSpan CloseGrace = TimeSpan.FromSeconds(5);

    private readonly SemaphoreSlim sending = new(1, 1);
    private volatile string? endedByServer;

    public override WebSocketCloseStatus? CloseStatus => inner.CloseStatus;

    public override string? CloseStatusDescription => inner.CloseStatusDescription;

    public override WebSocketState State => inner.State;

    public override string? SubProtocol => inner.SubProtocol;

    /// <summary>Sends a close frame with <paramref name="code"/> unless the socket is closing already, then aborts after the grace period.</summary>
    public async Task EndAsync(int code, string reason)
    {
        await sending.WaitAsync();
        try
        {
            if (inner.State is not (WebSocketState.Open or WebSocketState.CloseReceived)) return;
            endedByServer = reason;
            await inner.CloseOutputAsync((WebSocketCloseStatus)code, reason, CancellationToken.None);
        }
        finally
        {
            sending.Release();
        }
        _ = Task.Delay(CloseGrace).ContinueWith(_ =>
        {
            try
            {
                if (inner.State != WebSocketState.Closed) inner.Abort();
            }
            catch (ObjectDisposedException)
            {
                // The session ended in the meantime.
            }
        }, TaskScheduler.Default);
    }

    public override async Task SendAsync(ArraySegment<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken)
    {
        await sending.WaitAsync(cancellationToken);
        try
        {
            ThrowIfEnded();
            await inner.SendAsync(buffer, messageType, endOfMessage, cancellationToken);
        }
        finally
        {
            sending.Release();
        }
    }

    public override async ValueTask SendAsync(ReadOnlyMemory<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken)
    {
        await sending.WaitAsync(cancellationToken);
        try
        {
            ThrowIfEnded();
            await inner.SendAsync(buffer, messageType, endOfMessage, cancellationToken);
        }
        finally
        {
            sending.Release();
        }
    }

    public override async Task CloseAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken)
    {
        await sending.WaitAsync(cancellationToken);
        try
        {
            // The server may have started the close already: then the loop's own close has nothing left to say.
            if (inner.State is WebSocketState.Open or WebSocketState.CloseReceived)
                await inner.CloseAsync(closeStatus, statusDescription, cancellationToken);
        }
        finally
        {
            sending.Release();
        }
    }

    public override async Task CloseOutputAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken)
    {
        await sending.WaitAsync(cancellationToken);
        try
        {
            if (inner.State is WebSocketState.Open or WebSocketState.CloseReceived)
                await inner.CloseOutputAsync(closeStatus, statusDescription, cancellationToken);
        }
        finally
        {
            sending.Release();
        }
    }

    public override async Task<WebSocketReceiveResult> ReceiveAsync(ArraySegment<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            return await inner.ReceiveAsync(buffer, cancellationToken);
        }
        catch (Exception e) when (endedByServer is not null && e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Aborted after the server's close went unanswered: to the session loop, that is the end of the session.
            return new WebSocketReceiveResult(0, WebSocketMessageType.Close, true);
        }
    }

    public override async ValueTask<ValueWebSocketReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            return await inner.ReceiveAsync(buffer, cancellationToken);
        }
        catch (Exception e) when (endedByServer is not null && e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            return new ValueWebSocketReceiveResult(0, WebSocketMessageType.Close, true);
        }
    }

    private void ThrowIfEnded()
    {
        if (endedByServer is { } reason) throw new WebSocketException(WebSocketError.InvalidState, $"The server ended the session: {reason}");
    }

    public override void Abort() => inner.Abort();

    public override void Dispose()
    {
        inner.Dispose();
        sending.Dispose();
    }
}
