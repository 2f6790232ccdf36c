using Microsoft.EntityFrameworkCore;
using Npgsql;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Registry.Checkpoints;

/// <summary>
/// Sets, moves and deletes a tenant's aliases, writing one <see cref="AliasMove"/> per change in the same
/// save. Promotion is a move to a newer checkpoint; rollback is a move back to where the alias pointed
/// before its last move.
/// </summary>
public sealed class AliasService(RegistryDbContext db, CheckpointRegistry checkpoints, TimeProvider clock, IResolutionChanges invalidations)
{
    /// <summary>Points <paramref name="alias"/> of <paramref name="modelName"/> at the checkpoint <paramref name="checkpointReference"/> names.</summary>
    /// <exception cref="RegistryException">Invalid names, an unknown checkpoint, a checkpoint of another model, or a concurrent move.</exception>
    public async Task<CheckpointAlias> SetAsync(
        string modelName, string alias, string checkpointReference, string? reason, Guid? keyId, CancellationToken cancellationToken)
    {
        ValidateNames(modelName, alias);
        var target = await checkpoints.ResolveAsync(checkpointReference, null, cancellationToken);
        if (target.ModelName != modelName)
            throw RegistryException.Invalid($"Checkpoint {target.Id} is a version of '{target.ModelName}', not of '{modelName}'.");
        return await MoveAsync(modelName, alias, target.Id, reason, keyId, cancellationToken);
    }

    /// <summary>Moves <paramref name="alias"/> back to the checkpoint it pointed at before its last move.</summary>
    /// <exception cref="RegistryException">No such alias, or it has no earlier target.</exception>
    public async Task<CheckpointAlias> RollbackAsync(string modelName, string alias, string? reason, Guid? keyId, CancellationToken cancellationToken)
    {
        ValidateNames(modelName, alias);
        var current = await FindOwnAsync(modelName, alias, cancellationToken)
                      ?? throw RegistryException.NotFound($"Alias {modelName}@{alias} was not found.");
        var last = await db.AliasMoves.AsNoTracking()
            .Where(m => m.TenantId == current.TenantId && m.ModelName == modelName && m.Alias == alias)
            .OrderByDescending(m => m.Id)
            .FirstOrDefaultAsync(cancellationToken);
        if (last?.FromCheckpointId is not { } previous)
            throw RegistryException.Conflict($"Alias {modelName}@{alias} has no earlier checkpoint to roll back to.");
        return await MoveAsync(modelName, alias, previous, reason ?? "rollback", keyId, cancellationToken);
    }

    /// <summary>Deletes an alias of the current tenant and records the deletion.</summary>
    /// <exception cref="RegistryException">No such alias, or a concurrent move.</exception>
    public async Task DeleteAsync(string modelName, string alias, string? reason, Guid? keyId, CancellationToken cancellationToken)
    {
        ValidateNames(modelName, alias);
        var current = await FindOwnAsync(modelName, alias, cancellationToken)
                      ?? throw RegistryException.NotFound($"Alias {modelName}@{alias} was not found.");
        db.Aliases.Remove(current);
        db.AliasMoves.Add(new AliasMove
        {
            TenantId = current.TenantId, ModelName = modelName, Alias = alias, FromCheckpointId = current.CheckpointId,
            ToCheckpointId = null, MovedByKeyId = keyId, MovedAt = clock.GetUtcNow(), Reason = reason,
        });
        await SaveAsync(modelName, alias, cancellationToken);
    }

    private async Task<CheckpointAlias> MoveAsync(string modelName, string alias, Guid target, string? reason, Guid? keyId, CancellationToken cancellationToken)
    {
        var owner = db.CurrentTenantId;
        var current = await FindOwnAsync(modelName, alias, cancellationToken);
        var now = clock.GetUtcNow();
        if (current is null)
        {
            current = new CheckpointAlias { TenantId = owner, ModelName = modelName, Name = alias, CheckpointId = target, UpdatedAt = now };
            db.Aliases.Add(current);
        }
        else if (current.CheckpointId == target)
        {
            return current;
        }
        db.AliasMoves.Add(new AliasMove
        {
            TenantId = owner, ModelName = modelName, Alias = alias,
            FromCheckpointId = db.Entry(current).State == EntityState.Added ? null : current.CheckpointId,
            ToCheckpointId = target, MovedByKeyId = keyId, MovedAt = now, Reason = reason,
        });
        current.CheckpointId = target;
        current.UpdatedAt = now;
        await SaveAsync(modelName, alias, cancellationToken);
        return current;
    }

    // Only the caller's own aliases can change; a public alias is read-only to tenants.
    private Task<CheckpointAlias?> FindOwnAsync(string modelName, string alias, CancellationToken cancellationToken)
    {
        var owner = db.CurrentTenantId;
        return db.Aliases.FirstOrDefaultAsync(a => a.TenantId == owner && a.ModelName == modelName && a.Name == alias, cancellationToken);
    }

    private async Task SaveAsync(string modelName, string alias, CancellationToken cancellationToken)
    {
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException e) when (e is DbUpdateConcurrencyException || e.IsUniqueViolation())
        {
            throw RegistryException.Conflict($"Alias {modelName}@{alias} was changed concurrently; read it again and retry.");
        }
        // Every replica's remembered resolutions go, so the next request through the alias sees where it points now.
        await invalidations.PublishResolutionsChangedAsync();
    }

    private static void ValidateNames(string modelName, string alias)
    {
        if (!Names.IsValidModelName(modelName)) throw RegistryException.Invalid($"'{modelName}' is not a valid model name.");
        if (!Names.IsValidAlias(alias)) throw RegistryException.Invalid($"'{alias}' is not a valid alias (a-z, 0-9, '.', '_', '-'; not v<number>).");
    }
}
