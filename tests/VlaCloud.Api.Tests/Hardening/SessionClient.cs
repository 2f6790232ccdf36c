using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Mvc.Testing;
using VlaCloud.Registry;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Hardening;

/// <summary>WebSocket and Server-Sent Events clients for the hardening tests.</summary>
internal static class SessionClient
{
    public static Task<WebSocket> ConnectAsync(VlaCloudAppFactory app, string key, string path, string? origin = null)
    {
        var client = app.Server.CreateWebSocketClient();
        client.ConfigureRequest = request =>
        {
            request.Headers.Authorization = $"Bearer {key}";
            if (origin is not null) request.Headers.Origin = origin;
        };
        return client.ConnectAsync(new Uri($"ws://localhost{path}"), CancellationToken.None);
    }

    public static async Task<(WebSocketMessageType Type, byte[] Data)> ReceiveAsync(WebSocket socket, CancellationToken cancellationToken = default)
    {
        var buffer = new byte[1 << 20];
        var total = 0;
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer.AsMemory(total), cancellationToken);
            total += result.Count;
            if (result.EndOfMessage || result.MessageType == WebSocketMessageType.Close) return (result.MessageType, buffer[..total]);
        }
    }

    public static async Task<JsonObject> ReceiveJsonAsync(WebSocket socket)
    {
        var (type, data) = await ReceiveAsync(socket);
        Assert.Equal(WebSocketMessageType.Text, type);
        return JsonNode.Parse(data)!.AsObject();
    }

    public static Task SendJsonAsync(WebSocket socket, object message) =>
        socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(message), WebSocketMessageType.Text, true, CancellationToken.None);

    /// <summary>Reads frames until the close frame; its status, and how long that took from <paramref name="since"/>.</summary>
    public static async Task<(WebSocketCloseStatus? Status, TimeSpan After)> CloseAsync(WebSocket socket, Stopwatch since, TimeSpan bound)
    {
        using var timeout = new CancellationTokenSource(bound);
        while (true)
        {
            var (type, _) = await ReceiveAsync(socket, timeout.Token);
            if (type == WebSocketMessageType.Close) return (socket.CloseStatus, since.Elapsed);
        }
    }

    /// <summary>The SSE blocks (event and data lines) of <paramref name="stream"/> as they arrive, until it ends.</summary>
    public static async IAsyncEnumerable<string> EventsAsync(Stream stream, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var block = new StringBuilder();
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length > 0)
            {
                block.AppendLine(line);
                continue;
            }
            if (block.Length > 0) yield return block.ToString();
            block.Clear();
        }
    }

    /// <summary>The key id and tenant of a plain key, from the database.</summary>
    public static Task<(Guid KeyId, Guid? TenantId)> KeyOfAsync(VlaCloudAppFactory app, string plain) =>
        app.WithDbAsync(async db =>
        {
            var prefix = ApiKeyFormat.TryGetPrefix(plain);
            var key = await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.SingleAsync(db.ApiKeys, k => k.Prefix == prefix);
            return (key.Id, key.TenantId);
        });
}
