using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace VlaCloud.Testing;

/// <summary>
/// A throwaway redis-server process on a free loopback port, for tests that stop Redis on purpose
/// without disturbing the shared one.
/// </summary>
public sealed class LocalRedisServer : IAsyncDisposable
{
    private readonly Process process;

    private LocalRedisServer(Process process, int port)
    {
        this.process = process;
        Port = port;
    }

    /// <summary>The port it listens on.</summary>
    public int Port { get; }

    /// <summary>Its connection string.</summary>
    public string ConnectionString => $"127.0.0.1:{Port}";

    /// <summary>Starts a server and waits until it accepts connections.</summary>
    public static async Task<LocalRedisServer> StartAsync()
    {
        var port = FreePort();
        var start = new ProcessStartInfo("redis-server", ["--bind", "127.0.0.1", "--port", port.ToString(), "--save", "", "--appendonly", "no"])
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("redis-server is not installed; `bash .ci/services start` installs it.", e);
        }
        var server = new LocalRedisServer(process, port);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, port);
                return server;
            }
            catch (SocketException)
            {
                await Task.Delay(50);
            }
        }
        await server.DisposeAsync();
        throw new InvalidOperationException($"redis-server did not listen on port {port} within 10 s.");
    }

    /// <summary>Kills the server and waits for it to exit.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync();
        process.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
