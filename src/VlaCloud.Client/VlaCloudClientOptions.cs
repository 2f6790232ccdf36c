using System.Net.WebSockets;

namespace VlaCloud.Client;

/// <summary>Opens a WebSocket to <paramref name="uri"/> sending <paramref name="headers"/> with the upgrade request.</summary>
public delegate Task<WebSocket> WebSocketConnector(Uri uri, IReadOnlyDictionary<string, string> headers, CancellationToken cancellationToken);

/// <summary>How a <see cref="VlaCloudClient"/> reaches the server.</summary>
public sealed class VlaCloudClientOptions
{
    /// <summary>The server, e.g. <c>http://127.0.0.1:5080</c>.</summary>
    public required Uri BaseUrl { get; init; }

    /// <summary>The API key (<c>vlc_…</c>), sent as a bearer token; null for anonymous calls (health only).</summary>
    public string? ApiKey { get; init; }

    /// <summary>The HTTP handler; null for a new <see cref="SocketsHttpHandler"/>. Tests pass an in-memory server's handler.</summary>
    public HttpMessageHandler? Handler { get; init; }

    /// <summary>Opens stream sessions; null for <see cref="ClientWebSocket"/>. Tests pass an in-memory server's WebSocket client.</summary>
    public WebSocketConnector? WebSocketConnector { get; init; }

    /// <summary>Time limit of one ordinary request (uploads of files have none; cancel them with their token).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(100);

    /// <summary>Value of the <c>User-Agent</c> header.</summary>
    public string UserAgent { get; init; } = "vlacloud-dotnet/1.0";
}
