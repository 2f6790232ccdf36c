using Microsoft.EntityFrameworkCore;
using Npgsql;
using VlaCloud.Registry;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Registry;

[Collection(RegistryCollection.Name)]
public sealed class MigrationTests(ServicesFixture services)
{
    [Fact]
    public async Task Migrations_apply_to_an_empty_database_match_the_model_and_are_idempotent()
    {
        var connectionString = await services.CreateDatabaseAsync();
        var options = new DbContextOptionsBuilder<RegistryDbContext>();
        RegistryServiceCollectionExtensions.ConfigureNpgsql(options, connectionString);
        await using var db = new RegistryDbContext(options.Options);

        Assert.NotEmpty(await db.Database.GetPendingMigrationsAsync());
        await db.Database.MigrateAsync();
        Assert.Empty(await db.Database.GetPendingMigrationsAsync());
        Assert.False(db.Model.GetRelationalModel() is null);
        Assert.False(db.Database.HasPendingModelChanges(), "The model has changes no migration covers: add a migration.");

        await db.Database.MigrateAsync();
        Assert.Equal(db.Database.GetMigrations(), await db.Database.GetAppliedMigrationsAsync());

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public'", connection);
        var tables = ((string)(await command.ExecuteScalarAsync())!).Split(',');
        Assert.Superset(new HashSet<string>(["tenants", "api_keys", "embodiments", "checkpoints", "aliases", "alias_moves", "artifacts", "model_version_counters", "usage_days"]),
            tables.ToHashSet());
    }
}
