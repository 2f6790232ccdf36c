using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using VlaCloud.Registry;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Api.Hosting;

/// <summary>
/// Before the host serves: applies migrations (when configured) and seeds the demo tenant with its key and a platform
/// administrator's key.
/// Runs as the first hosted service so nothing else touches a database that is not ready.
/// </summary>
internal sealed class DatabaseInitializer(
    IServiceScopeFactory scopes,
    IOptions<VlaCloudOptions> options,
    ILogger<DatabaseInitializer> logger) : IHostedService
{
    public const string DemoTenantName = "demo";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<RegistryDbContext>();
        if (options.Value.MigrateOnStart)
        {
            await RegistryMigrations.MigrateAsync(db, cancellationToken);
            logger.LogInformation("Registry database is at migration {Migration}",
                (await db.Database.GetAppliedMigrationsAsync(cancellationToken)).LastOrDefault());
        }
        if (options.Value.SeedDemo)
        {
            await SeedDemoAsync(db, scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>(), cancellationToken);
            await ActivatorUtilities.CreateInstance<DemoSeeder>(scope.ServiceProvider).SeedAsync(cancellationToken);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task SeedDemoAsync(RegistryDbContext db, ApiKeyIssuer issuer, CancellationToken cancellationToken)
    {
        if (!await db.Tenants.AnyAsync(t => t.Name == DemoTenantName, cancellationToken))
        {
            var tenant = new Tenant { Name = DemoTenantName, DisplayName = "Demo tenant" };
            db.Tenants.Add(tenant);
            await db.SaveChangesAsync(cancellationToken);
            var (_, key) = await issuer.IssueAsync(tenant.Id, "demo", ApiScopes.Tenant.ToArray(), expiresAt: null, cancellationToken);
            Announce("Demo tenant created. Its API key (shown once, every tenant scope):", key, options.Value.DemoKeyFile);
        }
        // The platform's own key, apart from every tenant: also made on an install whose demo tenant predates the
        // separate role (its demo key lost the admin scope then).
        if (!await db.ApiKeys.AnyAsync(k => k.TenantId == null && k.RevokedAt == null, cancellationToken))
        {
            var (_, admin) = await issuer.IssuePlatformAdminAsync("demo admin", expiresAt: null, cancellationToken);
            Announce("Platform administrator's key created (shown once; scope admin: tenants, keys, the job dashboard):", admin, options.Value.AdminKeyFile);
        }
    }

    /// <summary>Prints a new key once, on purpose not through the logger (only its hash is kept), and writes it to <paramref name="path"/> (mode 600).</summary>
    internal static void Announce(string title, string key, string? path)
    {
        Console.WriteLine();
        Console.WriteLine($"  {title}");
        Console.WriteLine($"    {key}");
        if (path is { Length: > 0 })
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            var owner = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            var file = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows()) file.UnixCreateMode = owner;
            using (var writer = new StreamWriter(path, file)) writer.Write(key + "\n");
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, owner);
            Console.WriteLine($"  Also saved to {Path.GetFullPath(path)}");
        }
        Console.WriteLine();
    }
}
