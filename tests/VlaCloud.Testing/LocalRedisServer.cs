using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace VlaCloud.Testing;

/// <summary>
/// A throwaway redis-server process on a free loopback port, for tests that stop Redis on purpose
/// without disturbing the shared one. It can be stopped and started again on the same port, as an outage.
/// </summary>
public sealed class LocalRedisServer : IAsyncDisposable
{
    private Process? process;

    private LocalRedisServer(int port) => Port = port;

    /// <summary>The port it listens on.</summary>
    public int Port { get; }

    /// <summary>Its connection string.</summary>
    public string ConnectionString => $"127.0.0.1:{Port}";

    /// <summary>Starts a server and waits until it accepts connections.</summary>
    public static async Task<LocalRedisServer> StartAsync()
    {
        var server = new LocalRedisServer(FreePort());
        await server.RestartAsync();
        return server;
    }

    /// <summary>Starts the server again on its port (after <see cref="StopAsync"/>), empty, and waits until it accepts connections.</summary>
    public async Task RestartAsync()
    {
        if (process is { HasExited: false }) return;
        var start = new ProcessStartInfo("redis-server", ["--bind", "127.0.0.1", "--port", Port.ToString(), "--save", "", "--appendonly", "no"])
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("redis-server is not installed; `bash .ci/services start` installs it.", e);
        }
        // Drain its output so it never blocks on a full pipe.
        process.OutputDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        if (await AcceptsConnectionsAsync(Port, TimeSpan.FromSeconds(10), process)) return;
        await StopAsync();
        throw new InvalidOperationException($"redis-server did not listen on port {Port} within 10 s.");
    }

    /// <summary>Kills the server (an outage: connections drop at once) and waits for it to exit.</summary>
    public async Task StopAsync()
    {
        if (process is null) return;
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync();
        process.Dispose();
        process = null;
    }

    /// <summary>Kills the server.</summary>
    public async ValueTask DisposeAsync() => await StopAsync();

    /// <summary>
    /// Whether a loopback connection to <paramref name="port"/> succeeds within <paramref name="timeout"/>; false as
    /// soon as <paramref name="server"/> exits (it will never listen then).
    /// </summary>
    internal static async Task<bool> AcceptsConnectionsAsync(int port, TimeSpan timeout, Process server)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline && !server.HasExited)
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, port);
                return true;
            }
            catch (SocketException)
            {
                await Task.Delay(50);
            }
        }
        return false;
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
