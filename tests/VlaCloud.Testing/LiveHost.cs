using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace VlaCloud.Testing;

/// <summary>
/// The built host (<c>src/VlaCloud.Api/bin/Release/net10.0/VlaCloud.Api.dll</c>) as a child process on a free
/// loopback port, on its own fresh database, Redis prefix and artifact folder: real Kestrel, its own memory
/// (<see cref="ProcessId"/>, for <see cref="ProcessMemory"/>). The demo seed is on because it is how a new user gets a
/// key: the host writes it to <see cref="DemoKey"/>'s file, as <c>.ci/start</c> does. It is also a trainer (as on a
/// laptop), polling Hangfire quickly, so uploaded datasets are validated and jobs run.
/// </summary>
public sealed class LiveHost : IAsyncLifetime
{
    private readonly ServicesFixture services = new();
    private readonly StringBuilder output = new();
    private Process? process;

    /// <summary>Scratch folder of this host: artifacts, checkpoint cache, the CLI's config and files.</summary>
    public string Folder { get; } = Directory.CreateTempSubdirectory("vlacloud-cli-tests-").FullName;

    /// <summary>The host's base URL.</summary>
    public string Url { get; private set; } = "";

    /// <summary>The host process's id.</summary>
    public int ProcessId => process?.Id ?? throw new InvalidOperationException("The host has not started.");

    /// <summary>The demo tenant's API key, read from the file the host wrote.</summary>
    public string DemoKey { get; private set; } = "";

    /// <summary>What the host printed so far (for failure messages).</summary>
    public string Output
    {
        get
        {
            lock (output) return output.ToString();
        }
    }

    public async Task InitializeAsync()
    {
        await services.InitializeAsync();
        var dll = Path.Combine(RepositoryRoot.Path, "src/VlaCloud.Api/bin/Release/net10.0/VlaCloud.Api.dll");
        if (!File.Exists(dll)) throw new InvalidOperationException($"{dll} is missing; build the host first (dotnet build -c Release).");
        var port = FreePort();
        Url = $"http://127.0.0.1:{port}";
        var keyFile = Path.Combine(Folder, "demo-api-key");
        var start = new ProcessStartInfo("dotnet", [dll])
        {
            WorkingDirectory = Path.GetDirectoryName(dll)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            Environment =
            {
                ["ASPNETCORE_URLS"] = Url,
                ["ASPNETCORE_ENVIRONMENT"] = "Production",
                ["ConnectionStrings__Registry"] = services.PostgresConnectionString,
                ["ConnectionStrings__Redis"] = services.RedisConnectionString,
                ["VlaCloud__RedisPrefix"] = services.RedisPrefix,
                ["VlaCloud__MigrateOnStart"] = "true",
                ["VlaCloud__SeedDemo"] = "true",
                ["VlaCloud__DemoKeyFile"] = keyFile,
                ["VlaCloud__Roles"] = "api,trainer",
                ["VlaCloud__Jobs__QueuePollInterval"] = "00:00:00.500",
                ["VlaCloud__FineTuning__WorkPath"] = Path.Combine(Folder, "fine-tuning"),
                ["VlaCloud__Artifacts__Path"] = Path.Combine(Folder, "artifacts"),
                ["VlaCloud__Inference__CheckpointCachePath"] = Path.Combine(Folder, "checkpoint-cache"),
                ["VlaCloud__Observability__LogFormat"] = "simple",
            },
        };
        process = Process.Start(start) ?? throw new InvalidOperationException("The host did not start.");
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (true)
        {
            if (process.HasExited) throw new InvalidOperationException($"The host exited with {process.ExitCode}:\n{Output}");
            try
            {
                if ((await http.GetAsync($"{Url}/readyz")).StatusCode == HttpStatusCode.OK && File.Exists(keyFile)) break;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }
            if (DateTime.UtcNow > deadline) throw new InvalidOperationException($"The host was not ready within 3 minutes:\n{Output}");
            await Task.Delay(250);
        }
        DemoKey = (await File.ReadAllTextAsync(keyFile)).Trim();
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (output) output.AppendLine(line);
    }

    public async Task DisposeAsync()
    {
        if (process is { HasExited: false })
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
        process?.Dispose();
        await services.DisposeAsync();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
