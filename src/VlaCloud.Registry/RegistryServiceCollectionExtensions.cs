using Amazon.Runtime;
using Amazon.S3;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using VlaCloud.Registry.Artifacts;
using VlaCloud.Registry.Checkpoints;
using VlaCloud.Registry.Uploads;

namespace VlaCloud.Registry;

/// <summary>Registers the registry database and its services.</summary>
public static class RegistryServiceCollectionExtensions
{
    /// <summary>Name of the Postgres connection string in configuration.</summary>
    public const string ConnectionStringName = "Registry";

    /// <summary>
    /// Adds <see cref="RegistryDbContext"/> on Npgsql with snake_case names, the checkpoint registry, keys and the
    /// artifact store. The connection string is read when the first context is created (once per service provider), so hosts and
    /// tests can set it late. The host provides an <see cref="ITenantAccessor"/> and, for the checkpoint registry, an
    /// <see cref="IResolutionChanges"/>.
    /// </summary>
    public static IServiceCollection AddRegistry(this IServiceCollection services)
    {
        // The options are built once (singleton), not per scope: building them per request (UseNpgsql, the
        // extensions, the service provider lookup) was a noticeable share of a /v1/act request's CPU. The context
        // itself stays scoped, with the scope's tenant.
        services.AddDbContext<RegistryDbContext>((sp, options) =>
            ConfigureNpgsql(options, RequireConnectionString(sp.GetRequiredService<IConfiguration>())),
            optionsLifetime: ServiceLifetime.Singleton);
        services.AddScoped<ApiKeyLookup>();
        services.AddScoped<ApiKeyIssuer>();
        services.AddScoped<CheckpointRegistry>();
        services.AddScoped<AliasService>();
        services.AddScoped<ArtifactCollector>();
        services.AddOptions<ArtifactStoreOptions>().BindConfiguration(ArtifactStoreOptions.Section)
            .Configure<IConfiguration>((options, configuration) =>
            {
                // VlaCloud:ArtifactsPath is the short setting the start script uses.
                if (configuration["VlaCloud:ArtifactsPath"] is { Length: > 0 } path) options.Path = path;
            });
        services.AddSingleton<IArtifactStore>(CreateArtifactStore);
        services.AddSingleton<UploadPartStore>(CreateUploadPartStore);
        services.TryAddSingleton(TimeProvider.System);
        return services;
    }

    private static IArtifactStore CreateArtifactStore(IServiceProvider sp)
    {
        var options = sp.GetRequiredService<IOptions<ArtifactStoreOptions>>().Value;
        return IsS3(options)
            ? new S3ArtifactStore(CreateS3Client(options), options.Bucket!, options.Prefix)
            : new FileSystemArtifactStore(FileSystemRoot(sp, options));
    }

    /// <summary>Upload parts live in the artifact store's own place (a folder beside its blobs, or the same bucket).</summary>
    private static UploadPartStore CreateUploadPartStore(IServiceProvider sp)
    {
        var options = sp.GetRequiredService<IOptions<ArtifactStoreOptions>>().Value;
        return IsS3(options)
            ? new S3UploadPartStore(CreateS3Client(options), options.Bucket!, options.Prefix)
            : new FileSystemUploadPartStore(Path.Combine(FileSystemRoot(sp, options), "uploads"));
    }

    private static bool IsS3(ArtifactStoreOptions options)
    {
        if (options.Store.Equals("s3", StringComparison.OrdinalIgnoreCase))
        {
            if (string.IsNullOrEmpty(options.Bucket))
                throw new InvalidOperationException("VlaCloud:Artifacts:Store is s3 but VlaCloud:Artifacts:Bucket is not set.");
            return true;
        }
        if (!options.Store.Equals("filesystem", StringComparison.OrdinalIgnoreCase))
            throw new InvalidOperationException($"VlaCloud:Artifacts:Store '{options.Store}' is unknown; use filesystem or s3.");
        return false;
    }

    private static AmazonS3Client CreateS3Client(ArtifactStoreOptions options)
    {
        var config = new AmazonS3Config { ForcePathStyle = options.ForcePathStyle, AuthenticationRegion = options.Region };
        if (options.ServiceUrl is { Length: > 0 } url) config.ServiceURL = url;
        else config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(options.Region);
        return options.AccessKey is { Length: > 0 } accessKey
            ? new AmazonS3Client(new BasicAWSCredentials(accessKey, options.SecretKey), config)
            : new AmazonS3Client(config);
    }

    private static string FileSystemRoot(IServiceProvider sp, ArtifactStoreOptions options) =>
        Path.IsPathRooted(options.Path)
            ? options.Path
            : Path.Combine(sp.GetService<IHostEnvironment>()?.ContentRootPath ?? Directory.GetCurrentDirectory(), options.Path);

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
