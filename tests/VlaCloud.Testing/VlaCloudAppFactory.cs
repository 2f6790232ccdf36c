using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using VlaCloud.Client;
using VlaCloud.Registry;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Testing;

/// <summary>
/// The real host, in memory, on the fixture's database and Redis. Migrations run on start; the demo
/// seed and the Hangfire server are off unless a test turns them on through <paramref name="settings"/>.
/// </summary>
public class VlaCloudAppFactory(
    string postgres,
    string redis,
    string redisPrefix,
    IReadOnlyDictionary<string, string?>? settings = null) : WebApplicationFactory<Program>
{
    /// <summary>A factory on <paramref name="services"/>'s database.</summary>
    public VlaCloudAppFactory(ServicesFixture services, IReadOnlyDictionary<string, string?>? settings = null)
        : this(services.PostgresConnectionString, services.RedisConnectionString, services.RedisPrefix, settings)
    {
    }

    /// <inheritdoc />
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.UseSetting("ConnectionStrings:Registry", postgres);
        builder.UseSetting("ConnectionStrings:Redis", redis);
        builder.UseSetting("VlaCloud:RedisPrefix", redisPrefix);
        builder.UseSetting("VlaCloud:MigrateOnStart", "true");
        builder.UseSetting("VlaCloud:SeedDemo", "false");
        builder.UseSetting("VlaCloud:Roles", "api");
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            builder.UseSetting(key, value);
    }

    /// <summary>Creates a tenant and an API key with <paramref name="scopes"/> (every tenant scope by default); returns the tenant and the plain key.</summary>
    public async Task<(Tenant Tenant, string Key)> CreateTenantAsync(string? name = null, params string[] scopes)
    {
        using var scope = Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<RegistryDbContext>();
        var tenant = new Tenant { Name = name ?? $"t-{Guid.NewGuid():N}"[..20] };
        db.Tenants.Add(tenant);
        await db.SaveChangesAsync();
        var (_, key) = await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>()
            .IssueAsync(tenant.Id, "test", scopes.Length > 0 ? scopes : ApiScopes.Tenant.ToArray(), null, CancellationToken.None);
        return (tenant, key);
    }

    /// <summary>Creates a platform administrator's key (scope admin, no tenant); returns the plain key.</summary>
    public async Task<string> CreateAdminKeyAsync()
    {
        using var scope = Services.CreateScope();
        var (_, key) = await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>().IssuePlatformAdminAsync("test admin", null, CancellationToken.None);
        return key;
    }

    /// <summary>An HTTP client that sends <paramref name="key"/> as a bearer token.</summary>
    public HttpClient CreateClient(string key)
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", key);
        return client;
    }

    /// <summary>
    /// An SDK client on this in-memory host sending <paramref name="key"/> (none when null): HTTP through the test
    /// server's handler, WebSockets through its WebSocket client, so the SDK and the server meet on the real pipeline.
    /// </summary>
    public VlaCloudClient CreateSdkClient(string? key) => new(new VlaCloudClientOptions
    {
        BaseUrl = new Uri("http://localhost"),
        ApiKey = key,
        Handler = Server.CreateHandler(),
        WebSocketConnector = (uri, headers, cancellationToken) =>
        {
            var sockets = Server.CreateWebSocketClient();
            sockets.ConfigureRequest = request =>
            {
                foreach (var (name, value) in headers) request.Headers[name] = value;
            };
            return sockets.ConnectAsync(uri, cancellationToken);
        },
    });

    /// <summary>Runs <paramref name="work"/> with a fresh registry context.</summary>
    public async Task<T> WithDbAsync<T>(Func<RegistryDbContext, Task<T>> work)
    {
        using var scope = Services.CreateScope();
        return await work(scope.ServiceProvider.GetRequiredService<RegistryDbContext>());
    }

    /// <summary>Number of rows in a table, for assertions about what a request stored.</summary>
    public Task<int> CountAsync<TEntity>() where TEntity : class => WithDbAsync(db => db.Set<TEntity>().CountAsync());
}
