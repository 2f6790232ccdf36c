using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using VlaCloud.Datasets;
using VlaCloud.Inference;
using VlaCloud.Policy;
using VlaCloud.Policy.InternVla;
using VlaCloud.Registry;
using VlaCloud.Registry.Artifacts;
using VlaCloud.Registry.Checkpoints;
using VlaCloud.Registry.Entities;
using VlaCloud.Api.Limits;
using VlaCloud.Training.Jobs;

namespace VlaCloud.Api;

/// <summary>
/// Runs one checkpoint import (a Hangfire job on the default queue of a trainer that takes the import id only): extracts
/// the uploaded bundle within bounds (an uncompressed tar, plain relative paths, files and folders only, no more bytes
/// than the bundle, a bounded number of entries), converts it with <see cref="InternVlaM1Import.ImportBundle"/> (the code
/// <c>vlacloud checkpoints import</c> runs), stores the checkpoint, checks it as registration does and registers it as the
/// next version of the import's model. Every refusal is recorded on the import, not thrown.
/// </summary>
public sealed class CheckpointImportJob(
    RegistryDbContext db,
    IJobTenant tenant,
    IArtifactStore store,
    CheckpointRegistry registry,
    CheckpointInspector inspector,
    StorageQuota quota,
    IOptions<LimitsOptions> limits,
    IOptions<FineTuningJobOptions> options,
    TimeProvider clock,
    ILogger<CheckpointImportJob> logger)
{
    /// <summary>Most files and folders a bundle may hold (it needs seven).</summary>
    public const int MaxBundleEntries = 64;

    /// <summary>Runs import <paramref name="importId"/>; does nothing when it has ended.</summary>
    public async Task RunAsync(Guid importId, CancellationToken cancellationToken)
    {
        var owner = await db.CheckpointImports.IgnoreQueryFilters().Where(i => i.Id == importId).Select(i => i.TenantId).SingleOrDefaultAsync(cancellationToken);
        if (owner is not { } tenantId) return;
        tenant.ActFor(tenantId);
        var import = await db.CheckpointImports.SingleAsync(i => i.Id == importId, cancellationToken);
        if (CheckpointImportStatus.IsFinal(import.Status)) return;
        import.Status = CheckpointImportStatus.Running;
        import.StartedAt = clock.GetUtcNow();
        await db.SaveChangesAsync(cancellationToken);

        var work = Path.Combine(options.Value.WorkPath, "imports", importId.ToString("N"));
        try
        {
            var checkpoint = await ImportAsync(import, tenantId, work, cancellationToken);
            import.Status = CheckpointImportStatus.Succeeded;
            import.CheckpointId = checkpoint.Id;
            logger.LogInformation("Import {ImportId} registered {Model}@v{Version}", importId, checkpoint.ModelName, checkpoint.Version);
        }
        catch (ImportRefusedException e)
        {
            import.Status = CheckpointImportStatus.Failed;
            import.Error = e.Message.Length > 2000 ? e.Message[..2000] : e.Message;
            logger.LogInformation("Import {ImportId} failed: {Error}", importId, import.Error);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Anything else (a full disk, a store that is down) fails the import too: the client sees it end and may
            // ask again, rather than watch it run forever through retries.
            logger.LogError(e, "Import {ImportId} failed", importId);
            import.Status = CheckpointImportStatus.Failed;
            var message = $"The import failed on the server ({e.GetType().Name}: {e.Message.Replace(work, "", StringComparison.Ordinal)}).";
            import.Error = message.Length > 2000 ? message[..2000] : message;
        }
        finally
        {
            if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        }
        import.FinishedAt = clock.GetUtcNow();
        db.ChangeTracker.Entries().Where(e => e.Entity is not CheckpointImport).ToList().ForEach(e => e.State = EntityState.Detached);
        await db.SaveChangesAsync(CancellationToken.None);
    }

    private async Task<Checkpoint> ImportAsync(CheckpointImport import, Guid tenantId, string work, CancellationToken cancellationToken)
    {
        var bundle = Path.Combine(work, "bundle");
        var archive = Path.Combine(work, "bundle.tar");
        var output = Path.Combine(work, "checkpoint.tar");
        Directory.CreateDirectory(work);
        try
        {
            await using (var source = await store.OpenReadAsync(import.ArtifactSha256, cancellationToken))
            await using (var file = File.Create(archive))
                await source.CopyToAsync(file, cancellationToken);
        }
        catch (Exception e) when (e is FileNotFoundException or ArtifactCorruptedException)
        {
            throw new ImportRefusedException($"The bundle cannot be read from the artifact store ({e.Message}); upload it again.");
        }
        var size = new FileInfo(archive).Length;
        try
        {
            // An uncompressed tar: what it holds cannot add up to more than the tar itself.
            await DatasetArchive.ExtractAsync(archive, bundle,
                new ArchiveLimits(MaxTotalBytes: size, MaxEntries: MaxBundleEntries, MaxEntryBytes: size, TarOnly: true, Folder: "bundle"), cancellationToken);
        }
        catch (InvalidDataException e)
        {
            throw new ImportRefusedException($"bundle: {e.Message}");
        }
        File.Delete(archive);

        var renames = JsonSerializer.Deserialize<Dictionary<string, string>>(import.Embodiments) ?? [];
        InternVlaM1ImportResult result;
        try
        {
            // Conversion is CPU and disk work of minutes for a real run: off the job's thread.
            result = await Task.Factory.StartNew(() => InternVlaM1Import.ImportBundle(bundle, output, import.CheckpointFile, renames, import.Model),
                cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        catch (CheckpointException e)
        {
            throw new ImportRefusedException(e.Message);
        }
        Directory.Delete(bundle, recursive: true);

        var embodiment = await db.Embodiments.AsNoTracking().SingleAsync(e => e.Id == import.EmbodimentId, cancellationToken);
        if (!result.Normalization.ContainsKey(embodiment.Name))
            throw new ImportRefusedException($"dataset_statistics.json has no statistics for embodiment '{embodiment.Name}' (it has {string.Join(", ", result.Embodiments)}); " +
                                             $"map a tag to it with embodiments {{\"TAG\": \"{embodiment.Name}\"}}.");

        var tenantRow = await db.Tenants.AsNoTracking().SingleAsync(t => t.Id == tenantId, cancellationToken);
        var tenantLimits = limits.Value.For(new TenantLimitOverrides(tenantRow.RequestsPerSecond, tenantRow.Burst, tenantRow.MaxConcurrentStreams,
            tenantRow.MonthlyComputeMsQuota, tenantRow.StorageQuotaBytes));
        var storage = await quota.GetAsync(tenantId, tenantLimits, cancellationToken);
        var outputSize = new FileInfo(output).Length;
        if (!storage.Fits(outputSize))
            throw new ImportRefusedException($"The converted checkpoint is {outputSize} bytes; the tenant stores {storage.UsedBytes} of its {storage.QuotaBytes} bytes " +
                                             $"({storage.RemainingBytes} left). Free storage or ask for a larger limits.storage_quota_bytes.");
        ArtifactInfo info;
        await using (var file = File.OpenRead(output)) info = await store.PutAsync(file, cancellationToken);
        await db.RecordArtifactAsync(tenantId, info, "checkpoint", clock.GetUtcNow(), cancellationToken);

        // The same checks a registration through the API makes.
        try
        {
            await inspector.InspectAsync(info.Sha256, cancellationToken);
        }
        catch (CheckpointException e)
        {
            throw new ImportRefusedException($"The converted checkpoint cannot be served: {e.Message}");
        }
        var metrics = JsonSerializer.Serialize(new
        {
            import = new { id = import.Id, checkpoint = result.Checkpoint, tensors = result.Tensors, parameters = result.Parameters },
        });
        try
        {
            return await registry.RegisterAsync(new CheckpointRegistration(
                embodiment.Id.ToString(), import.Model, info.Sha256, result.Config.ToJson(), NormalizationStats.ToJson(result.Normalization), metrics,
                CreatedByKeyId: import.CreatedByKeyId), CancellationToken.None);
        }
        catch (RegistryException e)
        {
            throw new ImportRefusedException(e.Message);
        }
    }

    /// <summary>A refusal recorded on the import (the job itself succeeds: retrying would refuse again).</summary>
    private sealed class ImportRefusedException(string message) : Exception(message);
}
