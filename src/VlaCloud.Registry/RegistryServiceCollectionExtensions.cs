using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace VlaCloud.Registry;

/// <summary>Registers the registry database.</summary>
public static class RegistryServiceCollectionExtensions
{
    /// <summary>Name of the Postgres connection string in configuration.</summary>
    public const string ConnectionStringName = "Registry";

    /// <summary>
    /// Adds <see cref="RegistryDbContext"/> on Npgsql with snake_case names. The connection string
    /// is read when the first context is created, so hosts and tests can set it late.
    /// </summary>
    public static IServiceCollection AddRegistry(this IServiceCollection services)
    {
        services.AddDbContext<RegistryDbContext>((sp, options) =>
            ConfigureNpgsql(options, RequireConnectionString(sp.GetRequiredService<IConfiguration>())));
        services.AddScoped<ApiKeyLookup>();
        services.AddScoped<ApiKeyIssuer>();
        services.TryAddSingleton(TimeProvider.System);
        return services;
    }

    /// <summary>Applies the registry's provider settings to <paramref name="options"/>.</summary>
    public static DbContextOptionsBuilder ConfigureNpgsql(DbContextOptionsBuilder options, string connectionString) =>
        options
            .UseNpgsql(connectionString, npgsql => npgsql.MigrationsAssembly(RegistryDbContext.MigrationsAssembly))
            .UseSnakeCaseNamingConvention();

    /// <summary>The registry connection string, or a clear error naming the setting.</summary>
    public static string RequireConnectionString(IConfiguration configuration) =>
        configuration.GetConnectionString(ConnectionStringName) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"ConnectionStrings:{ConnectionStringName} is not set. Start the local services with `bash .ci/services start` " +
                "and run the host through `bash .ci/start`, or set ConnectionStrings__Registry.");
}
