using Microsoft.EntityFrameworkCore;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Registry;

/// <summary>
/// The registry database: the source of truth for tenants, keys and checkpoints. Tenant isolation lives
/// here and nowhere else: every tenant-owned set is filtered to the current tenant's rows plus public ones.
/// </summary>
public sealed class RegistryDbContext(DbContextOptions<RegistryDbContext> options, ITenantAccessor? tenant = null) : DbContext(options)
{
    /// <summary>Name of the assembly that holds the migrations (the <c>migrations/</c> project).</summary>
    public const string MigrationsAssembly = "VlaCloud.Migrations";

    /// <summary>The tenant whose rows this context sees (with public rows), or null for public rows only.</summary>
    public Guid? CurrentTenantId => tenant?.TenantId;

    /// <summary>Tenants.</summary>
    public DbSet<Tenant> Tenants => Set<Tenant>();

    /// <summary>API keys.</summary>
    public DbSet<ApiKey> ApiKeys => Set<ApiKey>();

    /// <summary>Embodiments (filtered to the current tenant's and public ones).</summary>
    public DbSet<Embodiment> Embodiments => Set<Embodiment>();

    /// <summary>Checkpoints (filtered to the current tenant's and public ones).</summary>
    public DbSet<Checkpoint> Checkpoints => Set<Checkpoint>();

    /// <summary>Artifacts the current tenant may register (its own and public ones).</summary>
    public DbSet<Artifact> Artifacts => Set<Artifact>();

    /// <summary>Aliases (filtered to the current tenant's and public ones).</summary>
    public DbSet<CheckpointAlias> Aliases => Set<CheckpointAlias>();

    /// <summary>The history of alias moves (filtered like aliases).</summary>
    public DbSet<AliasMove> AliasMoves => Set<AliasMove>();

    /// <summary>Version counters; only the checkpoint registry touches them, with SQL.</summary>
    public DbSet<ModelVersionCounter> ModelVersionCounters => Set<ModelVersionCounter>();

    /// <summary>Daily usage (filtered to the current tenant).</summary>
    public DbSet<UsageDay> UsageDays => Set<UsageDay>();

    /// <summary>Uploads in parts (filtered to the current tenant).</summary>
    public DbSet<Upload> Uploads => Set<Upload>();

    /// <summary>Received parts of uploads (reached through their upload).</summary>
    public DbSet<UploadPart> UploadParts => Set<UploadPart>();

    /// <summary>Datasets (filtered to the current tenant).</summary>
    public DbSet<Dataset> Datasets => Set<Dataset>();

    /// <summary>Imports of released runs (filtered to the current tenant).</summary>
    public DbSet<CheckpointImport> CheckpointImports => Set<CheckpointImport>();

    /// <summary>Fine-tuning jobs (filtered to the current tenant).</summary>
    public DbSet<FineTuningJob> FineTuningJobs => Set<FineTuningJob>();

    /// <summary>Job events (filtered to the current tenant).</summary>
    public DbSet<JobEvent> JobEvents => Set<JobEvent>();

    /// <summary>Training states saved by jobs (filtered to the current tenant).</summary>
    public DbSet<JobCheckpoint> JobCheckpoints => Set<JobCheckpoint>();

    /// <inheritdoc />
    protected override void OnModelCreating(ModelBuilder model)
    {
        model.Entity<Tenant>(tenant =>
        {
            tenant.Property(t => t.Name).HasMaxLength(64);
            tenant.HasIndex(t => t.Name).IsUnique();
            tenant.Property(t => t.DisplayName).HasMaxLength(200);
            tenant.Property(t => t.RowVersion).IsRowVersion();
            tenant.Property(t => t.InferenceWeight).HasDefaultValue(Tenant.DefaultInferenceWeight);
            tenant.ToTable(t => t.HasCheckConstraint("ck_tenants_inference_weight",
                $"inference_weight >= {Tenant.MinInferenceWeight.ToString(System.Globalization.CultureInfo.InvariantCulture)} AND inference_weight <= {Tenant.MaxInferenceWeight.ToString(System.Globalization.CultureInfo.InvariantCulture)}"));
        });

        model.Entity<ApiKey>(key =>
        {
            key.Property(k => k.Name).HasMaxLength(100);
            key.Property(k => k.Prefix).HasMaxLength(16);
            key.HasIndex(k => k.Prefix).IsUnique();
            key.HasIndex(k => k.TenantId);
            key.HasOne(k => k.Tenant).WithMany(t => t.ApiKeys).HasForeignKey(k => k.TenantId).OnDelete(DeleteBehavior.Cascade);
            key.Property(k => k.RowVersion).IsRowVersion();
        });

        model.Entity<Embodiment>(embodiment =>
        {
            embodiment.Property(e => e.Name).HasMaxLength(100);
            embodiment.Property(e => e.Description).HasMaxLength(1000);
            embodiment.Property(e => e.ActionSpace).HasMaxLength(100);
            embodiment.Property(e => e.Simulator).HasMaxLength(64);
            // Public rows have no tenant; NULLS NOT DISTINCT keeps their names unique too.
            embodiment.HasIndex(e => new { e.TenantId, e.Name }).IsUnique().AreNullsDistinct(false);
            embodiment.HasOne<Tenant>().WithMany().HasForeignKey(e => e.TenantId).OnDelete(DeleteBehavior.Cascade);
            embodiment.OwnsMany(e => e.Cameras, camera => camera.ToJson());
            embodiment.HasQueryFilter(e => e.TenantId == null || e.TenantId == CurrentTenantId);
        });

        model.Entity<Checkpoint>(checkpoint =>
        {
            checkpoint.Property(c => c.ModelName).HasMaxLength(100);
            checkpoint.Property(c => c.ArtifactUri).HasMaxLength(1000);
            checkpoint.Property(c => c.Sha256).HasMaxLength(64).IsFixedLength();
            checkpoint.Property(c => c.Config).HasColumnType("jsonb");
            checkpoint.Property(c => c.NormalizationStats).HasColumnType("jsonb");
            checkpoint.Property(c => c.Metrics).HasColumnType("jsonb");
            checkpoint.HasIndex(c => new { c.TenantId, c.EmbodimentId, c.ModelName, c.Version }).IsUnique().AreNullsDistinct(false);
            checkpoint.HasIndex(c => new { c.TenantId, c.ModelName });
            checkpoint.HasIndex(c => c.ParentCheckpointId);
            checkpoint.HasIndex(c => c.DatasetId);
            // One result per job: a job retried after a crash cannot register a second version.
            checkpoint.HasIndex(c => c.FineTuningJobId).IsUnique();
            checkpoint.HasOne<Dataset>().WithMany().HasForeignKey(c => c.DatasetId).OnDelete(DeleteBehavior.Restrict);
            checkpoint.HasOne<FineTuningJob>().WithMany().HasForeignKey(c => c.FineTuningJobId).OnDelete(DeleteBehavior.Restrict);
            checkpoint.HasOne(c => c.Embodiment).WithMany().HasForeignKey(c => c.EmbodimentId).OnDelete(DeleteBehavior.Restrict);
            checkpoint.HasOne<Checkpoint>().WithMany().HasForeignKey(c => c.ParentCheckpointId).OnDelete(DeleteBehavior.Restrict);
            checkpoint.HasOne<Tenant>().WithMany().HasForeignKey(c => c.TenantId).OnDelete(DeleteBehavior.Cascade);
            checkpoint.HasQueryFilter(c => c.TenantId == null || c.TenantId == CurrentTenantId);
        });

        model.Entity<Artifact>(artifact =>
        {
            artifact.Property(a => a.Sha256).HasMaxLength(64).IsFixedLength();
            artifact.Property(a => a.Uri).HasMaxLength(1000);
            artifact.Property(a => a.Kind).HasMaxLength(32);
            artifact.HasIndex(a => new { a.TenantId, a.Sha256 }).IsUnique().AreNullsDistinct(false);
            artifact.HasOne<Tenant>().WithMany().HasForeignKey(a => a.TenantId).OnDelete(DeleteBehavior.Cascade);
            artifact.HasQueryFilter(a => a.TenantId == null || a.TenantId == CurrentTenantId);
        });

        model.Entity<CheckpointAlias>(alias =>
        {
            alias.Property(a => a.ModelName).HasMaxLength(100);
            alias.Property(a => a.Name).HasMaxLength(64);
            alias.HasIndex(a => new { a.TenantId, a.ModelName, a.Name }).IsUnique().AreNullsDistinct(false);
            alias.HasIndex(a => a.CheckpointId);
            alias.HasOne(a => a.Checkpoint).WithMany().HasForeignKey(a => a.CheckpointId).OnDelete(DeleteBehavior.Restrict);
            alias.HasOne<Tenant>().WithMany().HasForeignKey(a => a.TenantId).OnDelete(DeleteBehavior.Cascade);
            alias.Property(a => a.RowVersion).IsRowVersion();
            alias.HasQueryFilter(a => a.TenantId == null || a.TenantId == CurrentTenantId);
        });

        model.Entity<AliasMove>(move =>
        {
            move.Property(m => m.ModelName).HasMaxLength(100);
            move.Property(m => m.Alias).HasMaxLength(64);
            move.Property(m => m.Reason).HasMaxLength(500);
            move.HasIndex(m => new { m.TenantId, m.ModelName, m.Alias, m.Id });
            move.HasOne<Tenant>().WithMany().HasForeignKey(m => m.TenantId).OnDelete(DeleteBehavior.Cascade);
            move.HasQueryFilter(m => m.TenantId == null || m.TenantId == CurrentTenantId);
        });

        model.Entity<ModelVersionCounter>(counter =>
        {
            counter.HasKey(c => new { c.OwnerId, c.EmbodimentId, c.ModelName });
            counter.Property(c => c.ModelName).HasMaxLength(100);
        });

        model.Entity<UsageDay>(usage =>
        {
            usage.HasKey(u => new { u.TenantId, u.Day, u.CheckpointId });
            usage.HasOne<Tenant>().WithMany().HasForeignKey(u => u.TenantId).OnDelete(DeleteBehavior.Cascade);
            usage.HasQueryFilter(u => u.TenantId == CurrentTenantId);
        });

        model.Entity<Upload>(upload =>
        {
            upload.Property(u => u.Filename).HasMaxLength(255);
            upload.Property(u => u.Sha256).HasMaxLength(64).IsFixedLength();
            upload.Property(u => u.Purpose).HasMaxLength(32);
            upload.Property(u => u.MimeType).HasMaxLength(100);
            upload.Property(u => u.Embodiment).HasMaxLength(100);
            upload.Property(u => u.Status).HasMaxLength(16);
            upload.Property(u => u.ArtifactSha256).HasMaxLength(64).IsFixedLength();
            upload.HasIndex(u => new { u.Status, u.ExpiresAt });
            upload.HasIndex(u => u.TenantId);
            upload.HasOne<Tenant>().WithMany().HasForeignKey(u => u.TenantId).OnDelete(DeleteBehavior.Cascade);
            upload.HasMany(u => u.Parts).WithOne().HasForeignKey(p => p.UploadId).OnDelete(DeleteBehavior.Cascade);
            upload.Property(u => u.RowVersion).IsRowVersion();
            upload.HasQueryFilter(u => u.TenantId == CurrentTenantId);
        });

        model.Entity<UploadPart>(part =>
        {
            part.HasKey(p => new { p.UploadId, p.PartNumber });
            part.Property(p => p.Sha256).HasMaxLength(64).IsFixedLength();
        });

        model.Entity<Dataset>(dataset =>
        {
            dataset.Property(d => d.Name).HasMaxLength(255);
            dataset.Property(d => d.ArtifactSha256).HasMaxLength(64).IsFixedLength();
            dataset.Property(d => d.Status).HasMaxLength(16);
            dataset.Property(d => d.Format).HasMaxLength(16);
            dataset.Property(d => d.Issues).HasColumnType("jsonb");
            dataset.Property(d => d.Statistics).HasColumnType("jsonb");
            dataset.HasIndex(d => new { d.TenantId, d.Id });
            dataset.HasOne<Tenant>().WithMany().HasForeignKey(d => d.TenantId).OnDelete(DeleteBehavior.Cascade);
            dataset.HasOne<Embodiment>().WithMany().HasForeignKey(d => d.EmbodimentId).OnDelete(DeleteBehavior.Restrict);
            dataset.HasQueryFilter(d => d.TenantId == CurrentTenantId);
        });

        model.Entity<CheckpointImport>(import =>
        {
            import.Property(i => i.Model).HasMaxLength(100);
            import.Property(i => i.Embodiments).HasColumnType("jsonb");
            import.Property(i => i.CheckpointFile).HasMaxLength(255);
            import.Property(i => i.ArtifactSha256).HasMaxLength(64).IsFixedLength();
            import.Property(i => i.Status).HasMaxLength(16);
            import.Property(i => i.Error).HasMaxLength(2000);
            import.HasIndex(i => new { i.TenantId, i.Id });
            import.HasOne<Tenant>().WithMany().HasForeignKey(i => i.TenantId).OnDelete(DeleteBehavior.Cascade);
            import.HasOne<Embodiment>().WithMany().HasForeignKey(i => i.EmbodimentId).OnDelete(DeleteBehavior.Restrict);
            import.HasOne<Checkpoint>().WithMany().HasForeignKey(i => i.CheckpointId).OnDelete(DeleteBehavior.Restrict);
            import.HasQueryFilter(i => i.TenantId == CurrentTenantId);
        });

        model.Entity<FineTuningJob>(job =>
        {
            job.Property(j => j.Model).HasMaxLength(100);
            job.Property(j => j.Status).HasMaxLength(16);
            job.Property(j => j.PromoteTo).HasMaxLength(64);
            job.Property(j => j.Hyperparameters).HasColumnType("jsonb");
            job.Property(j => j.Metrics).HasColumnType("jsonb");
            job.Property(j => j.Evaluation).HasColumnType("jsonb");
            job.Property(j => j.Error).HasMaxLength(2000);
            job.Property(j => j.ResumeArtifactSha256).HasMaxLength(64).IsFixedLength();
            job.Property(j => j.BackgroundJobId).HasMaxLength(64);
            job.Property(j => j.WorkerId).HasMaxLength(200);
            // The trainers' scan for running jobs whose heartbeat went stale.
            job.HasIndex(j => new { j.Status, j.HeartbeatAt });
            job.HasIndex(j => new { j.TenantId, j.Id });
            job.HasOne<Tenant>().WithMany().HasForeignKey(j => j.TenantId).OnDelete(DeleteBehavior.Cascade);
            job.HasOne<Checkpoint>().WithMany().HasForeignKey(j => j.BaseCheckpointId).OnDelete(DeleteBehavior.Restrict);
            job.HasOne<Dataset>().WithMany().HasForeignKey(j => j.DatasetId).OnDelete(DeleteBehavior.Restrict);
            job.HasOne<Embodiment>().WithMany().HasForeignKey(j => j.EmbodimentId).OnDelete(DeleteBehavior.Restrict);
            job.HasQueryFilter(j => j.TenantId == CurrentTenantId);
        });

        model.Entity<JobEvent>(e =>
        {
            e.Property(x => x.Id).UseIdentityAlwaysColumn();
            e.Property(x => x.Level).HasMaxLength(8);
            e.Property(x => x.Type).HasMaxLength(16);
            e.Property(x => x.Message).HasMaxLength(2000);
            e.Property(x => x.Data).HasColumnType("jsonb");
            e.HasIndex(x => new { x.JobId, x.Id });
            e.HasOne<FineTuningJob>().WithMany().HasForeignKey(x => x.JobId).OnDelete(DeleteBehavior.Cascade);
            e.HasQueryFilter(x => x.TenantId == CurrentTenantId);
        });

        model.Entity<JobCheckpoint>(c =>
        {
            c.Property(x => x.Metrics).HasColumnType("jsonb");
            c.Property(x => x.ArtifactSha256).HasMaxLength(64).IsFixedLength();
            c.HasIndex(x => new { x.JobId, x.Step }).IsUnique();
            c.HasOne<FineTuningJob>().WithMany().HasForeignKey(x => x.JobId).OnDelete(DeleteBehavior.Cascade);
            c.HasQueryFilter(x => x.TenantId == CurrentTenantId);
        });
    }

    /// <inheritdoc />
    public override int SaveChanges(bool acceptAllChangesOnSuccess)
    {
        RefuseChangesToImmutableRows();
        return base.SaveChanges(acceptAllChangesOnSuccess);
    }

    /// <inheritdoc />
    public override Task<int> SaveChangesAsync(bool acceptAllChangesOnSuccess, CancellationToken cancellationToken = default)
    {
        RefuseChangesToImmutableRows();
        return base.SaveChangesAsync(acceptAllChangesOnSuccess, cancellationToken);
    }

    // Checkpoints are what a robot runs: changing one in place would change behaviour behind a version number.
    private void RefuseChangesToImmutableRows()
    {
        foreach (var entry in ChangeTracker.Entries())
        {
            if (entry.State is EntityState.Modified && entry.Entity is Checkpoint or AliasMove or Artifact)
                throw new InvalidOperationException($"{entry.Entity.GetType().Name} rows are immutable once registered.");
        }
    }
}
