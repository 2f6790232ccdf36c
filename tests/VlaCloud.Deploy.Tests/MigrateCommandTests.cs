using Npgsql;
using VlaCloud.Api.Hosting;
using VlaCloud.Testing;

namespace VlaCloud.Deploy.Tests;

[Collection(DeployCollection.Name)]
public sealed class MigrateCommandTests(ServicesFixture services)
{
    [Fact]
    public async Task Migrate_on_a_fresh_database_applies_every_migration_and_the_job_store_schema_then_again_changes_nothing()
    {
        var database = await services.CreateDatabaseAsync();

        Assert.Equal(0, await MigrateCommand.RunAsync([MigrateCommand.Switch, $"--ConnectionStrings:Registry={database}"]));
        var afterFirst = await StateAsync(database);
        Assert.True(afterFirst.Migrations > 0, "no migration was recorded");
        Assert.Contains("job", afterFirst.HangfireTables);
        Assert.Contains("tenants", afterFirst.PublicTables);

        Assert.Equal(0, await MigrateCommand.RunAsync([MigrateCommand.Switch, $"--ConnectionStrings:Registry={database}"]));
        Assert.Equal(afterFirst, await StateAsync(database));
    }

    [Trait("Category", "Slow")]
    [Fact]
    public async Task The_host_process_started_with_migrate_migrates_and_exits_zero_without_serving()
    {
        var database = await services.CreateDatabaseAsync();
        var host = Path.Combine(AppContext.BaseDirectory, "VlaCloud.Api.dll");

        var (exitCode, output) = await ExternalTools.RunAsync("dotnet",
            [host, "--migrate", $"--ConnectionStrings:Registry={database}"], AppContext.BaseDirectory, TimeSpan.FromMinutes(2));

        Assert.True(exitCode == 0, output);
        Assert.True((await StateAsync(database)).Migrations > 0, output);
        Assert.DoesNotContain("Now listening on", output);
    }

    [Fact]
    public async Task Migrate_exits_non_zero_when_the_database_cannot_be_reached()
    {
        var unreachable = "Host=127.0.0.1;Port=1;Database=none;Username=none;Password=none;Timeout=2";
        Assert.Equal(1, await MigrateCommand.RunAsync([MigrateCommand.Switch, $"--ConnectionStrings:Registry={unreachable}"]));
    }

    private static async Task<(int Migrations, string HangfireTables, string PublicTables)> StateAsync(string database)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        async Task<string> TablesAsync(string schema)
        {
            await using var command = new NpgsqlCommand(
                "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = @schema", connection);
            command.Parameters.AddWithValue("schema", schema);
            return (await command.ExecuteScalarAsync()) as string ?? "";
        }
        await using var count = new NpgsqlCommand("SELECT count(*) FROM \"__EFMigrationsHistory\"", connection);
        return ((int)(long)(await count.ExecuteScalarAsync())!, await TablesAsync("hangfire"), await TablesAsync("public"));
    }
}
