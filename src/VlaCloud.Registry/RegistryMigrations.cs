using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.EntityFrameworkCore.Storage;

namespace VlaCloud.Registry;

/// <summary>Applies the registry's migrations; every place that migrates (the host's start, <c>--migrate</c>) goes through it.</summary>
public static class RegistryMigrations
{
    /// <summary>
    /// Creates the migrations history table if it is missing, then applies the pending migrations. EF's migrator
    /// reads the history table before it creates it, so on a fresh database it logged a failed
    /// <c>SELECT ... FROM "__EFMigrationsHistory"</c> command at error level on every first start, which reads as a
    /// fault to whoever watches the logs.
    /// </summary>
    public static async Task MigrateAsync(RegistryDbContext db, CancellationToken cancellationToken = default)
    {
        await EnsureHistoryTableAsync(db, cancellationToken);
        await db.Database.MigrateAsync(cancellationToken);
    }

    /// <summary>
    /// Creates the migrations history table if it is missing, with EF's own idempotent script (the same DDL the migrator
    /// runs), so reading the applied or pending migrations of a fresh database does not fail. A database that does not
    /// exist yet is left to the migrator, which creates it.
    /// </summary>
    public static async Task EnsureHistoryTableAsync(RegistryDbContext db, CancellationToken cancellationToken = default)
    {
        if (await db.GetService<IRelationalDatabaseCreator>().ExistsAsync(cancellationToken))
            await db.Database.ExecuteSqlRawAsync(db.GetService<IHistoryRepository>().GetCreateIfNotExistsScript(), cancellationToken);
    }
}
