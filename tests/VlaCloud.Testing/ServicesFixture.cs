using DotNet.Testcontainers.Builders;
using Npgsql;
using Testcontainers.PostgreSql;
using Testcontainers.Redis;
using Xunit;

namespace VlaCloud.Testing;

/// <summary>
/// Real Postgres and Redis for one test collection. Sources, in order: the connection strings in
/// <c>VLACLOUD_TEST_POSTGRES</c> / <c>VLACLOUD_TEST_REDIS</c> (set by <c>.ci/test</c>), else
/// Testcontainers when a Docker engine answers, else a failure that names the script.
/// Each fixture gets its own fresh database and Redis key prefix, so collections run in parallel.
/// </summary>
public sealed class ServicesFixture : IAsyncLifetime
{
    /// <summary>Environment variable with a Postgres connection string (a superuser that may create databases).</summary>
    public const string PostgresVariable = "VLACLOUD_TEST_POSTGRES";

    /// <summary>Environment variable with a Redis connection string.</summary>
    public const string RedisVariable = "VLACLOUD_TEST_REDIS";

    private PostgreSqlContainer? postgresContainer;
    private RedisContainer? redisContainer;
    private string serverConnectionString = "";

    /// <summary>Connection string of this fixture's own, freshly created database.</summary>
    public string PostgresConnectionString { get; private set; } = "";

    /// <summary>Connection string of the Redis server.</summary>
    public string RedisConnectionString { get; private set; } = "";

    /// <summary>Redis key prefix unique to this fixture.</summary>
    public string RedisPrefix { get; } = $"test-{Guid.NewGuid():N}:";

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        var postgres = Environment.GetEnvironmentVariable(PostgresVariable);
        var redis = Environment.GetEnvironmentVariable(RedisVariable);
        if (string.IsNullOrEmpty(postgres) || string.IsNullOrEmpty(redis))
            (postgres, redis) = await StartContainersAsync();
        serverConnectionString = postgres;
        RedisConnectionString = redis;
        PostgresConnectionString = await CreateDatabaseAsync();
    }

    /// <summary>Creates another empty database on the same server and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = $"vlacloud_test_{Guid.NewGuid():N}";
        await using (var connection = new NpgsqlConnection(serverConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await command.ExecuteNonQueryAsync();
        }
        return new NpgsqlConnectionStringBuilder(serverConnectionString) { Database = name }.ConnectionString;
    }

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        // Test databases are left for inspection on local servers; .ci/test drops them at the start of the next run.
        if (postgresContainer is not null) await postgresContainer.DisposeAsync();
        if (redisContainer is not null) await redisContainer.DisposeAsync();
    }

    private async Task<(string Postgres, string Redis)> StartContainersAsync()
    {
        try
        {
            postgresContainer = new PostgreSqlBuilder("postgres:15").Build();
            redisContainer = new RedisBuilder("redis:7").Build();
            await Task.WhenAll(postgresContainer.StartAsync(), redisContainer.StartAsync());
            return (postgresContainer.GetConnectionString(), redisContainer.GetConnectionString());
        }
        catch (Exception e) when (e is DockerUnavailableException or ArgumentException or InvalidOperationException)
        {
            throw new InvalidOperationException(
                $"No Postgres and Redis for the tests: {PostgresVariable}/{RedisVariable} are not set and no Docker engine answers " +
                $"({e.GetType().Name}). Run the suite with `bash .ci/test`, which starts private local servers " +
                "(or start them with `bash .ci/services start` and export the two variables).", e);
        }
    }
}
