using Microsoft.EntityFrameworkCore;
using VlaCloud.Registry.Checkpoints;
using VlaCloud.Registry.Entities;
using VlaCloud.Testing;

namespace VlaCloud.Registry.Tests;

/// <summary>Tests of the registry against the collection's Postgres server; each test makes its own database.</summary>
[CollectionDefinition(Name)]
public sealed class RegistryDatabaseCollection : ICollectionFixture<ServicesFixture>
{
    public const string Name = "registry-database";
}

/// <summary>A freshly migrated registry database, with contexts and services on it in a tenant's name, as a host would make them.</summary>
internal sealed class RegistryDatabase
{
    private RegistryDatabase(string connectionString)
    {
        var options = new DbContextOptionsBuilder<RegistryDbContext>();
        RegistryServiceCollectionExtensions.ConfigureNpgsql(options, connectionString);
        Options = options.Options;
        ConnectionString = connectionString;
    }

    public DbContextOptions<RegistryDbContext> Options { get; }

    public string ConnectionString { get; }

    /// <summary>What the registry announced through <see cref="IResolutionChanges"/>, counted.</summary>
    public ResolutionChangeLog Announcements { get; } = new();

    public static async Task<RegistryDatabase> CreateAsync(ServicesFixture services)
    {
        var database = new RegistryDatabase(await services.CreateDatabaseAsync());
        await using var db = database.Context(null);
        await db.Database.MigrateAsync();
        return database;
    }

    /// <summary>A context that sees <paramref name="tenantId"/>'s rows and public ones (only public ones for null).</summary>
    public RegistryDbContext Context(Guid? tenantId) => new(Options, new FixedTenantAccessor(tenantId));

    public CheckpointRegistry Checkpoints(RegistryDbContext db) => new(db, TimeProvider.System, Announcements);

    public AliasService Aliases(RegistryDbContext db) => new(db, Checkpoints(db), TimeProvider.System, Announcements);

    /// <summary>A tenant with an embodiment and an artifact row to register versions from.</summary>
    public async Task<(Guid Tenant, Embodiment Embodiment, Artifact Artifact)> TenantWithArtifactAsync()
    {
        var tenant = new Tenant { Name = $"t-{Guid.NewGuid():N}"[..20] };
        var embodiment = new Embodiment { TenantId = tenant.Id, Name = $"arm-{Guid.NewGuid():N}"[..12], ActionSpace = "delta_eef+gripper", ActionDim = 7, ChunkLength = 16, ControlHz = 10 };
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var artifact = new Artifact { TenantId = tenant.Id, Sha256 = sha, SizeBytes = 3, Uri = $"file:///artifacts/{sha}", Kind = "checkpoint" };
        await using var db = Context(tenant.Id);
        db.AddRange(tenant, embodiment, artifact);
        await db.SaveChangesAsync();
        return (tenant.Id, embodiment, artifact);
    }

    /// <summary>Registers a new version of <paramref name="model"/> from the tenant's artifact.</summary>
    public async Task<Checkpoint> RegisterAsync(Guid tenant, Embodiment embodiment, Artifact artifact, string model)
    {
        await using var db = Context(tenant);
        return await Checkpoints(db).RegisterAsync(new(embodiment.Name, model, artifact.Sha256, "{}", "{}"), CancellationToken.None);
    }
}

/// <summary>
/// Records the registry's announcements instead of carrying them to other replicas: the host's carrier (the API key
/// cache on Redis) is tested with the host; here the question is only whether the registry announces when it should.
/// </summary>
internal sealed class ResolutionChangeLog : IResolutionChanges
{
    private int count;

    public int Count => Volatile.Read(ref count);

    public Task PublishResolutionsChangedAsync()
    {
        Interlocked.Increment(ref count);
        return Task.CompletedTask;
    }
}
