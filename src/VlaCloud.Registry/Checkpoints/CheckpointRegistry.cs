using Microsoft.EntityFrameworkCore;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Registry.Checkpoints;

/// <summary>What a caller supplies to register a checkpoint from an artifact it has put.</summary>
/// <param name="Embodiment">The embodiment's id or name.</param>
/// <param name="ModelName">The model name the version is counted under.</param>
/// <param name="ArtifactSha256">The artifact's SHA-256 (the tenant must have put it).</param>
/// <param name="Config">Model configuration, a JSON object.</param>
/// <param name="NormalizationStats">Normalisation statistics, a JSON object.</param>
/// <param name="Metrics">Metrics, a JSON object, or null.</param>
/// <param name="ParentCheckpointId">Lineage: the checkpoint it was fine-tuned from.</param>
/// <param name="DatasetId">Lineage: the dataset.</param>
/// <param name="FineTuningJobId">Lineage: the job.</param>
/// <param name="CreatedByKeyId">The key that asked, for the audit.</param>
public sealed record CheckpointRegistration(
    string Embodiment,
    string ModelName,
    string ArtifactSha256,
    string Config,
    string NormalizationStats,
    string? Metrics = null,
    Guid? ParentCheckpointId = null,
    Guid? DatasetId = null,
    Guid? FineTuningJobId = null,
    Guid? CreatedByKeyId = null);

/// <summary>
/// Registers checkpoints and resolves references to them, in the name of the context's tenant.
/// Inference resolves every request's checkpoint through <see cref="ResolveAsync"/>.
/// </summary>
public sealed class CheckpointRegistry(RegistryDbContext db, TimeProvider clock, IResolutionChanges invalidations)
{
    /// <summary>
    /// Registers a new version for a client. Its lineage must be the caller's own: a parent it can see (its own or a
    /// public checkpoint) and a dataset of its own. A fine-tuning job's result is registered by the job itself
    /// (<see cref="RegisterJobResultAsync"/>), so a client naming a job is refused: 404 for another tenant's or an
    /// unknown job, 409 for its own.
    /// </summary>
    /// <exception cref="RegistryException">The embodiment, artifact, parent, dataset or job is not the caller's, or a name is invalid.</exception>
    public async Task<Checkpoint> RegisterAsync(CheckpointRegistration registration, CancellationToken cancellationToken)
    {
        if (registration.FineTuningJobId is { } jobId)
        {
            throw await db.FineTuningJobs.AnyAsync(j => j.Id == jobId, cancellationToken)
                ? RegistryException.Conflict($"Fine-tuning job {jobId} registers its own result; register this checkpoint without fine_tuning_job_id.")
                : RegistryException.NotFound($"Fine-tuning job {jobId} (fine_tuning_job_id) was not found.");
        }
        return await RegisterVersionAsync(registration, cancellationToken);
    }

    /// <summary>
    /// Registers the result of the running fine-tuning job <see cref="CheckpointRegistration.FineTuningJobId"/>, for the
    /// job itself. A job registers one result (a unique index backs that up across retries).
    /// </summary>
    /// <exception cref="RegistryException">The job is not the context tenant's or not running, or the lineage is not the tenant's.</exception>
    public async Task<Checkpoint> RegisterJobResultAsync(CheckpointRegistration registration, CancellationToken cancellationToken)
    {
        var jobId = registration.FineTuningJobId ?? throw new ArgumentException("A job result names its job.", nameof(registration));
        var status = await db.FineTuningJobs.Where(j => j.Id == jobId).Select(j => j.Status).FirstOrDefaultAsync(cancellationToken)
                     ?? throw RegistryException.NotFound($"Fine-tuning job {jobId} (fine_tuning_job_id) was not found.");
        if (status != FineTuningJobStatus.Running)
            throw RegistryException.Conflict($"Fine-tuning job {jobId} is {status}; only a running job registers its result.");
        return await RegisterVersionAsync(registration, cancellationToken);
    }

    /// <summary>
    /// The version comes from a counter row bumped with <c>INSERT … ON CONFLICT DO UPDATE … RETURNING</c> in the same
    /// transaction as the insert: the row lock orders concurrent registrations, and a rolled-back registration gives its
    /// number back, so versions have neither duplicates nor gaps.
    /// </summary>
    private async Task<Checkpoint> RegisterVersionAsync(CheckpointRegistration registration, CancellationToken cancellationToken)
    {
        if (!Names.IsValidModelName(registration.ModelName))
            throw RegistryException.Invalid("model must be 1-100 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit.");
        var embodiment = await FindEmbodimentAsync(registration.Embodiment, cancellationToken)
                         ?? throw RegistryException.NotFound($"Embodiment '{registration.Embodiment}' was not found.");
        var sha = registration.ArtifactSha256.ToLowerInvariant();
        var artifact = await db.Artifacts.AsNoTracking()
                           .Where(a => a.Sha256 == sha)
                           .OrderBy(a => a.TenantId == null)
                           .FirstOrDefaultAsync(cancellationToken)
                       ?? throw RegistryException.NotFound($"Artifact {sha} was not found. Put it first (POST /v1/checkpoints/artifacts).");
        // The query filters make these the caller's rows (and public checkpoints): another tenant's id, an unknown
        // one and the empty id all read as absent.
        if (registration.ParentCheckpointId is { } parentId && !await db.Checkpoints.AnyAsync(c => c.Id == parentId, cancellationToken))
            throw RegistryException.NotFound($"Parent checkpoint {parentId} (parent_checkpoint_id) was not found.");
        if (registration.DatasetId is { } datasetId && !await db.Datasets.AnyAsync(d => d.Id == datasetId, cancellationToken))
            throw RegistryException.NotFound($"Dataset {datasetId} (dataset_id) was not found.");

        var owner = db.CurrentTenantId;
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var ownerKey = owner ?? Guid.Empty;
        var version = (await db.Database.SqlQuery<int>($"""
            INSERT INTO model_version_counters (owner_id, embodiment_id, model_name, last_version)
            VALUES ({ownerKey}, {embodiment.Id}, {registration.ModelName}, 1)
            ON CONFLICT (owner_id, embodiment_id, model_name)
            DO UPDATE SET last_version = model_version_counters.last_version + 1
            RETURNING last_version AS "Value"
            """).ToListAsync(cancellationToken)).Single();

        var checkpoint = new Checkpoint
        {
            TenantId = owner,
            EmbodimentId = embodiment.Id,
            ModelName = registration.ModelName,
            Version = version,
            ArtifactUri = artifact.Uri,
            Sha256 = artifact.Sha256,
            SizeBytes = artifact.SizeBytes,
            Config = registration.Config,
            NormalizationStats = registration.NormalizationStats,
            Metrics = registration.Metrics,
            ParentCheckpointId = registration.ParentCheckpointId,
            DatasetId = registration.DatasetId,
            FineTuningJobId = registration.FineTuningJobId,
            CreatedByKeyId = registration.CreatedByKeyId,
            CreatedAt = clock.GetUtcNow(),
        };
        db.Checkpoints.Add(checkpoint);
        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        // A new version may shadow a public one of the same number, or make model@vN ambiguous: remembered resolutions go.
        await invalidations.PublishResolutionsChangedAsync();
        checkpoint.Embodiment = embodiment;
        return checkpoint;
    }

    /// <summary>
    /// The checkpoint <paramref name="reference"/> names, as the context's tenant sees it. For the model forms
    /// the tenant's own rows win over public ones; <paramref name="embodiment"/> (id or name) picks one when the
    /// model has versions for several embodiments.
    /// </summary>
    /// <exception cref="RegistryException">Malformed, not found, or ambiguous.</exception>
    public async Task<Checkpoint> ResolveAsync(string reference, string? embodiment, CancellationToken cancellationToken)
    {
        if (!CheckpointReference.TryParse(reference, out var parsed))
            throw RegistryException.Invalid($"'{reference}' is not a checkpoint reference. Use an id, model@vN or model@alias.");

        if (parsed.Id is { } id)
        {
            return await db.Checkpoints.AsNoTracking().Include(c => c.Embodiment).FirstOrDefaultAsync(c => c.Id == id, cancellationToken)
                   ?? throw RegistryException.NotFound($"Checkpoint {id} was not found.");
        }

        if (parsed.Alias is { } aliasName)
        {
            var alias = await db.Aliases.AsNoTracking()
                            .Where(a => a.ModelName == parsed.ModelName && a.Name == aliasName)
                            .OrderBy(a => a.TenantId == null)
                            .Select(a => a.Checkpoint)
                            .FirstOrDefaultAsync(cancellationToken)
                        ?? throw RegistryException.NotFound($"Alias {parsed} was not found.");
            return await db.Checkpoints.AsNoTracking().Include(c => c.Embodiment).SingleAsync(c => c.Id == alias.Id, cancellationToken);
        }

        var query = db.Checkpoints.AsNoTracking().Include(c => c.Embodiment)
            .Where(c => c.ModelName == parsed.ModelName && c.Version == parsed.Version);
        if (embodiment is not null)
        {
            var target = await FindEmbodimentAsync(embodiment, cancellationToken)
                         ?? throw RegistryException.NotFound($"Embodiment '{embodiment}' was not found.");
            query = query.Where(c => c.EmbodimentId == target.Id);
        }
        var candidates = await query.OrderBy(c => c.TenantId == null).Take(3).ToListAsync(cancellationToken);
        if (candidates.Count == 0) throw RegistryException.NotFound($"Checkpoint {parsed} was not found.");
        var best = candidates.Where(c => c.TenantId == candidates[0].TenantId).ToList();
        if (best.Count > 1)
            throw RegistryException.Invalid($"{parsed} exists for several embodiments; name the embodiment or use the checkpoint id.");
        return best[0];
    }

    /// <summary>An embodiment by id or name: the tenant's own before a public one of the same name.</summary>
    public Task<Embodiment?> FindEmbodimentAsync(string idOrName, CancellationToken cancellationToken) =>
        Guid.TryParse(idOrName, out var id)
            ? db.Embodiments.AsNoTracking().FirstOrDefaultAsync(e => e.Id == id, cancellationToken)
            : db.Embodiments.AsNoTracking().Where(e => e.Name == idOrName).OrderBy(e => e.TenantId == null).FirstOrDefaultAsync(cancellationToken);
}
