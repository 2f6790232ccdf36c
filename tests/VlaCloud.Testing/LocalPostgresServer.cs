using System.Diagnostics;
using Npgsql;

namespace VlaCloud.Testing;

/// <summary>
/// A throwaway Postgres cluster (initdb, pg_ctl) on a free loopback port, for tests that stop Postgres on purpose
/// without disturbing the shared server. As root it runs as the <c>postgres</c> system user (Postgres refuses root),
/// with its data under /var/tmp where that user can reach it.
/// </summary>
public sealed class LocalPostgresServer : IAsyncDisposable
{
    private const string User = "vlacloud";
    private readonly string bin;
    private readonly string folder;

    private LocalPostgresServer(string bin, string folder, int port)
    {
        this.bin = bin;
        this.folder = folder;
        Port = port;
    }

    /// <summary>The port it listens on.</summary>
    public int Port { get; }

    /// <summary>Connection string of its <c>vlacloud</c> database.</summary>
    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Database=vlacloud;Username={User};Timeout=3";

    private string Data => Path.Combine(folder, "data");

    /// <summary>Creates the cluster, starts it and creates the <c>vlacloud</c> database.</summary>
    public static async Task<LocalPostgresServer> StartAsync()
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb"))).Order().LastOrDefault()
            : null;
        if (bin is null) throw new InvalidOperationException("Postgres is not installed; `bash .ci/services start` installs it.");
        var folder = Path.Combine("/var/tmp", $"vlacloud-test-pg-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        if (IsRoot) await RunAsync("chown", "postgres:", folder);
        var server = new LocalPostgresServer(bin, folder, LocalRedisServer.FreePort());
        await server.AsPostgresAsync("initdb", "-D", server.Data, "-U", User, "--auth=trust", "-E", "UTF8", "--no-locale");
        await server.RestartAsync();
        await using (var connection = new NpgsqlConnection($"Host=127.0.0.1;Port={server.Port};Database=postgres;Username={User}"))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE DATABASE vlacloud", connection);
            await create.ExecuteNonQueryAsync();
        }
        return server;
    }

    /// <summary>Starts the cluster again (after <see cref="StopAsync"/>) and waits until it accepts connections.</summary>
    public Task RestartAsync() => AsPostgresAsync("pg_ctl", "-D", Data, "-l", Path.Combine(folder, "postgres.log"), "-w", "-t", "60",
        "-o", $"-p {Port} -c listen_addresses=127.0.0.1 -k {folder} -c max_connections=200 -c fsync=off", "start");

    /// <summary>Stops the cluster at once (an outage: every connection drops).</summary>
    public Task StopAsync() => AsPostgresAsync("pg_ctl", "-D", Data, "-m", "immediate", "-w", "stop");

    /// <summary>Stops the cluster and deletes its files.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        catch (InvalidOperationException)
        {
            // Already stopped.
        }
        NpgsqlConnection.ClearAllPools();
        Directory.Delete(folder, recursive: true);
    }

    private static bool IsRoot => Environment.UserName == "root";

    private Task AsPostgresAsync(string tool, params string[] args) =>
        IsRoot ? RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(bin, tool), .. args]) : RunAsync(Path.Combine(bin, tool), args);

    private static async Task RunAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start.");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {process.ExitCode}: {await output}{await error}");
    }
}
