using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using VlaCloud.Registry;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Api.Hosting;

/// <summary>
/// Before the host serves: applies migrations (when configured) and seeds the demo tenant and key.
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
            await db.Database.MigrateAsync(cancellationToken);
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
        if (await db.Tenants.AnyAsync(t => t.Name == DemoTenantName, cancellationToken)) return;

        var tenant = new Tenant { Name = DemoTenantName, DisplayName = "Demo tenant" };
        db.Tenants.Add(tenant);
        await db.SaveChangesAsync(cancellationToken);
        var (_, key) = await issuer.IssueAsync(tenant.Id, "demo", ApiScopes.All.ToArray(), expiresAt: null, cancellationToken);

        // Printed once, on purpose not through the logger: only its hash is kept.
        Console.WriteLine();
        Console.WriteLine("  Demo tenant created. Its API key (shown once, all scopes):");
        Console.WriteLine($"    {key}");
        if (options.Value.DemoKeyFile is { Length: > 0 } path)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            await File.WriteAllTextAsync(path, key + "\n", cancellationToken);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            Console.WriteLine($"  Also saved to {Path.GetFullPath(path)}");
        }
        Console.WriteLine();
    }
}
