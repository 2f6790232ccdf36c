using Hangfire.PostgreSql;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using VlaCloud.Registry;

namespace VlaCloud.Api.Hosting;

/// <summary>
/// <c>VlaCloud.Api --migrate</c>: applies the registry's EF Core migrations and the job store's schema, then
/// exits. The Helm chart runs it as a pre-install/pre-upgrade Job so serving pods never migrate on start.
/// </summary>
public static class MigrateCommand
{
    /// <summary>The command-line switch that selects this mode.</summary>
    public const string Switch = "--migrate";

    /// <summary>Schema of the Hangfire tables, the same the host's job storage uses.</summary>
    public const string JobStoreSchema = "hangfire";

    /// <summary>Whether <paramref name="args"/> ask for the migrate-only mode.</summary>
    public static bool IsRequested(IEnumerable<string> args) => args.Contains(Switch, StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Migrates the database named by <c>ConnectionStrings:Registry</c> (from the usual configuration sources:
    /// appsettings, environment, the other <paramref name="args"/>) and returns the process exit code.
    /// </summary>
    public static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken = default)
    {
        // The switch is not a configuration key: the command-line provider would read it as one.
        var builder = Host.CreateApplicationBuilder(args.Where(a => !a.Equals(Switch, StringComparison.OrdinalIgnoreCase)).ToArray());
        builder.Services.AddRegistry();
        using var host = builder.Build();
        var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(MigrateCommand).FullName!);
        try
        {
            await using var scope = host.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<RegistryDbContext>();
            // Before the pending migrations are listed: on a fresh database that read would fail (and log the failure).
            await RegistryMigrations.EnsureHistoryTableAsync(db, cancellationToken);
            var pending = (await db.Database.GetPendingMigrationsAsync(cancellationToken)).ToList();
            logger.LogInformation("Applying {Count} pending registry migration(s): {Migrations}", pending.Count, string.Join(", ", pending));
            await RegistryMigrations.MigrateAsync(db, cancellationToken);

            await using (var connection = new NpgsqlConnection(RegistryServiceCollectionExtensions.RequireConnectionString(builder.Configuration)))
            {
                await connection.OpenAsync(cancellationToken);
                PostgreSqlObjectsInstaller.Install(connection, JobStoreSchema);
            }

            logger.LogInformation("Registry database is at migration {Migration}; job store schema '{Schema}' is installed",
                (await db.Database.GetAppliedMigrationsAsync(cancellationToken)).LastOrDefault(), JobStoreSchema);
            return 0;
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or DbUpdateException or TimeoutException)
        {
            logger.LogError(e, "Migration failed");
            return 1;
        }
    }
}
