using Microsoft.EntityFrameworkCore;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Registry;

/// <summary>The registry database: the source of truth for tenants, keys and checkpoints.</summary>
public sealed class RegistryDbContext(DbContextOptions<RegistryDbContext> options) : DbContext(options)
{
    /// <summary>Name of the assembly that holds the migrations (the <c>migrations/</c> project).</summary>
    public const string MigrationsAssembly = "VlaCloud.Migrations";

    /// <summary>Tenants.</summary>
    public DbSet<Tenant> Tenants => Set<Tenant>();

    /// <summary>API keys.</summary>
    public DbSet<ApiKey> ApiKeys => Set<ApiKey>();

    /// <inheritdoc />
    protected override void OnModelCreating(ModelBuilder model)
    {
        model.Entity<Tenant>(tenant =>
        {
            tenant.Property(t => t.Name).HasMaxLength(64);
            tenant.HasIndex(t => t.Name).IsUnique();
            tenant.Property(t => t.DisplayName).HasMaxLength(200);
        });

        model.Entity<ApiKey>(key =>
        {
            key.Property(k => k.Name).HasMaxLength(100);
            key.Property(k => k.Prefix).HasMaxLength(16);
            key.HasIndex(k => k.Prefix).IsUnique();
            key.HasIndex(k => k.TenantId);
            key.HasOne(k => k.Tenant).WithMany(t => t.ApiKeys).HasForeignKey(k => k.TenantId).OnDelete(DeleteBehavior.Cascade);
        });
    }
}
