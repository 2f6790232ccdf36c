using System.Buffers;
using System.Net.WebSockets;
using VlaCloud.Api.Acting;

namespace VlaCloud.Api.Apis;

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
