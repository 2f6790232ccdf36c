using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using VlaCloud.Api.Hosting;
using VlaCloud.Contracts;
using VlaCloud.Policy;
using VlaCloud.Registry;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Benchmarks;

/// <summary>
/// What a suite that runs the real host needs around it: a database of its own on the local Postgres of
/// <c>.ci/services</c> (dropped at the end), a Redis prefix of its own, and a temporary folder for artifacts and
/// scratch files (deleted at the end). Hosts started from it share the database and the folder, so a suite can
/// restart the host with other settings and find what it registered before.
/// </summary>
internal sealed class BenchmarkEnvironment : IAsyncDisposable
{
    private readonly string postgres;
    private readonly string database;
    private readonly Dictionary<string, string?> settings;

    private BenchmarkEnvironment(string postgres, string database, string root, Dictionary<string, string?> settings)
    {
        this.postgres = postgres;
        this.database = database;
        this.settings = settings;
        Root = root;
    }

    /// <summary>The temporary folder; artifacts are under <c>artifacts/</c>, the rest is free for the suite.</summary>
    public string Root { get; }

    /// <summary>
    /// Creates the database and the folder. Connection strings come from the environment (as <c>.ci/services env</c>
    /// prints them); without them the repository's local Postgres and Redis are started (and installed if missing)
    /// with <c>.ci/services</c>, so one command runs a benchmark on a fresh machine.
    /// </summary>
    public static async Task<BenchmarkEnvironment> CreateAsync()
    {
        var postgres = Environment.GetEnvironmentVariable("ConnectionStrings__Registry");
        var redis = Environment.GetEnvironmentVariable("ConnectionStrings__Redis");
        if (string.IsNullOrEmpty(postgres) || string.IsNullOrEmpty(redis))
        {
            var local = await LocalServices.StartAsync();
            postgres = local["ConnectionStrings__Registry"];
            redis = local["ConnectionStrings__Redis"];
        }
        var database = $"vlacloud_bench_{Guid.NewGuid():N}";
        await ExecuteAsync(postgres, $"CREATE DATABASE {database}");
        var root = Directory.CreateTempSubdirectory("vlacloud-bench-").FullName;
        var artifacts = Path.Combine(root, "artifacts");
        // Rate limits are lifted so the limiter never is what a benchmark measures.
        var settings = new Dictionary<string, string?>
        {
            ["ConnectionStrings:Registry"] = new NpgsqlConnectionStringBuilder(postgres) { Database = database }.ConnectionString,
            ["ConnectionStrings:Redis"] = redis,
            ["VlaCloud:RedisPrefix"] = $"bench-{Guid.NewGuid():N}:",
            ["VlaCloud:MigrateOnStart"] = "true",
            ["VlaCloud:SeedDemo"] = "false",
            ["VlaCloud:Roles"] = "api",
            ["VlaCloud:ArtifactsPath"] = artifacts,
            ["VlaCloud:Artifacts:Path"] = artifacts,
            ["VlaCloud:Inference:CheckpointCachePath"] = Path.Combine(artifacts, "cache"),
            ["VlaCloud:Limits:TenantRequestsPerSecond"] = "1000000",
            ["VlaCloud:Limits:TenantBurst"] = "1000000",
            ["VlaCloud:Limits:KeyRequestsPerSecond"] = "1000000",
            ["VlaCloud:Limits:KeyBurst"] = "1000000",
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:Console:FormatterName"] = "simple",
            ["VlaCloud:Observability:LogFormat"] = "simple",
        };
        return new BenchmarkEnvironment(postgres, database, root, settings);
    }

    /// <summary>
    /// Starts the host (role <c>api</c> unless <paramref name="overrides"/> says otherwise) on a free loopback port;
    /// <paramref name="overrides"/> replace or add settings.
    /// </summary>
    public async Task<BenchmarkHost> StartHostAsync(IReadOnlyDictionary<string, string?>? overrides, CancellationToken cancellationToken)
    {
        // An empty content root of its own: by default it is the working directory (the repository), which the host
        // watches for appsettings changes, and every write under it (Postgres' files in .local/, a profiler's output)
        // then woke the file watcher, ~0.3 ms of CPU per request. Production's content root is the image's /app.
        var contentRoot = Directory.CreateDirectory(Path.Combine(Root, "content-root")).FullName;
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Benchmark", ContentRootPath = contentRoot });
        builder.Configuration.AddInMemoryCollection(settings);
        if (overrides is not null) builder.Configuration.AddInMemoryCollection(overrides);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.AddVlaCloud();
        var app = builder.Build();
        app.MapVlaCloud();
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
        return new BenchmarkHost(app, new Uri(app.Urls.First()));
    }

    /// <summary>Drops the database and deletes the folder; stop the hosts first.</summary>
    public async ValueTask DisposeAsync()
    {
        await ExecuteAsync(postgres, $"DROP DATABASE IF EXISTS {database} WITH (FORCE)");
        Directory.Delete(Root, recursive: true);
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Database = "postgres" }.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}

/// <summary>The repository's local Postgres and Redis, through <c>.ci/services</c> (the script the tests and the host use).</summary>
internal static class LocalServices
{
    /// <summary>Starts them (idempotent) and returns the connection strings <c>.ci/services env</c> exports.</summary>
    public static async Task<Dictionary<string, string>> StartAsync()
    {
        var script = Path.Combine(RepositoryRoot(), ".ci", "services");
        await RunAsync(script, "start");
        var exports = new Dictionary<string, string>();
        foreach (var line in (await RunAsync(script, "env")).Split('\n'))
        {
            // export NAME='value'
            var match = System.Text.RegularExpressions.Regex.Match(line, "^export ([A-Za-z_]+)='([^']*)'$");
            if (match.Success) exports[match.Groups[1].Value] = match.Groups[2].Value;
        }
        foreach (var name in new[] { "ConnectionStrings__Registry", "ConnectionStrings__Redis" })
            if (!exports.ContainsKey(name)) throw new InvalidOperationException($".ci/services env printed no {name}");
        return exports;
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "VlaCloud.sln"))) return dir.FullName;
        throw new InvalidOperationException("set ConnectionStrings__Registry and ConnectionStrings__Redis, or run the benchmarks from the repository (no VlaCloud.sln above " + AppContext.BaseDirectory + ")");
    }

    private static async Task<string> RunAsync(string script, string command)
    {
        var start = new System.Diagnostics.ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(command);
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0) throw new InvalidOperationException($".ci/services {command} failed ({process.ExitCode}): {await errors}");
        Console.Error.Write(await errors);
        return await output;
    }
}

/// <summary>A running host of a <see cref="BenchmarkEnvironment"/>; disposing it stops it.</summary>
internal sealed class BenchmarkHost(WebApplication app, Uri address) : IAsyncDisposable
{
    /// <summary>Its base address (<c>http://127.0.0.1:PORT/</c>).</summary>
    public Uri Address => address;

    /// <summary>Its services, for what the API does not expose (tenants, rows to read back).</summary>
    public IServiceProvider Services => app.Services;

    /// <summary>Creates a tenant with a key of every scope; returns the plain key.</summary>
    public async Task<string> CreateTenantAsync()
    {
        using var scope = app.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<RegistryDbContext>();
        var tenant = new Tenant { Name = $"bench-{Guid.NewGuid():N}"[..20] };
        db.Tenants.Add(tenant);
        await db.SaveChangesAsync();
        var (_, key) = await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>().IssueAsync(tenant.Id, "bench", ApiScopes.Tenant.ToArray(), null, CancellationToken.None);
        return key;
    }

    /// <summary>A client of the host that sends <paramref name="key"/>, with enough connections for many concurrent callers.</summary>
    public HttpClient CreateClient(string key)
    {
        var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256 }) { BaseAddress = address };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return http;
    }

    /// <summary>Stores <paramref name="policy"/>'s checkpoint and registers it as the next version of <paramref name="model"/> for <paramref name="embodiment"/>.</summary>
    public static async Task RegisterCheckpointAsync(HttpClient http, VlaPolicy policy, string model, string embodiment)
    {
        using var tar = new MemoryStream();
        policy.SaveTar(tar);
        using var content = new ByteArrayContent(tar.ToArray());
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        var put = await http.PostAsync("/v1/checkpoints/artifacts", content);
        put.EnsureSuccessStatusCode();
        var sha = (await put.Content.ReadFromJsonAsync<ArtifactResponse>())!.Sha256;
        (await http.PostAsJsonAsync("/v1/checkpoints", new
        {
            model, embodiment, artifact_sha256 = sha,
            config = JsonDocument.Parse(policy.Config.ToJson()).RootElement,
            normalization_stats = JsonDocument.Parse(NormalizationStats.ToJson(policy.Normalization)).RootElement,
        })).EnsureSuccessStatusCode();
    }

    /// <summary>Stops the host.</summary>
    public async ValueTask DisposeAsync()
    {
        await app.StopAsync(CancellationToken.None);
        await app.DisposeAsync();
    }
}
