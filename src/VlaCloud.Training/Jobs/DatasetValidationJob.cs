using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VlaCloud.Datasets;
using VlaCloud.Registry;
using VlaCloud.Registry.Artifacts;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Training.Jobs;

/// <summary>
/// Validates an uploaded dataset (a background job that takes the dataset id only): extracts the archive,
/// inspects it against its embodiment and records <c>ready</c> with statistics or <c>failed</c> with every
/// problem per file.
/// </summary>
public sealed class DatasetValidationJob(
    RegistryDbContext db,
    IJobTenant tenant,
    IArtifactStore store,
    IOptions<FineTuningJobOptions> options,
    TimeProvider clock,
    ILogger<DatasetValidationJob> logger)
{
    /// <summary>Validates dataset <paramref name="datasetId"/>; does nothing when it is no longer validating.</summary>
    public async Task RunAsync(Guid datasetId, CancellationToken cancellationToken)
    {
        var owner = await db.Datasets.IgnoreQueryFilters().Where(d => d.Id == datasetId).Select(d => d.TenantId).SingleOrDefaultAsync(cancellationToken);
        if (owner is not { } tenantId) return;
        tenant.ActFor(tenantId);
        var dataset = await db.Datasets.SingleAsync(d => d.Id == datasetId, cancellationToken);
        if (dataset.Status != DatasetStatus.Validating) return;
        var embodiment = await db.Embodiments.AsNoTracking().SingleAsync(e => e.Id == dataset.EmbodimentId, cancellationToken);

        List<DatasetIssue> issues;
        DatasetInspection? inspection = null;
        try
        {
            var folder = await DatasetFiles.EnsureExtractedAsync(store, dataset.ArtifactSha256, options.Value, cancellationToken);
            inspection = await LeRobotDataset.InspectAsync(folder, ExpectationsOf(embodiment), cancellationToken);
            issues = [.. inspection.Issues];
        }
        catch (InvalidDataException e)
        {
            issues = [new DatasetIssue(dataset.Name, e.Message)];
        }

        dataset.Issues = JsonSerializer.Serialize(issues.Select(i => new { file = i.File, message = i.Message }));
        dataset.Format = inspection?.Dataset?.Info.CodebaseVersion;
        dataset.Episodes = inspection?.Dataset?.Episodes.Count;
        dataset.Frames = inspection?.Dataset?.TotalFrames;
        if (inspection is { IsValid: true })
        {
            dataset.Status = DatasetStatus.Ready;
            dataset.Statistics = StatisticsJson(inspection);
        }
        else
        {
            dataset.Status = DatasetStatus.Failed;
        }
        dataset.ValidatedAt = clock.GetUtcNow();
        await db.SaveChangesAsync(cancellationToken);
        logger.LogInformation("Dataset {DatasetId} is {Status} ({Issues} issue(s))", datasetId, dataset.Status, issues.Count);
    }

    /// <summary>What <paramref name="embodiment"/> asks of a dataset: dims, cameras, and the image size when all cameras share one.</summary>
    public static DatasetExpectations ExpectationsOf(Embodiment embodiment)
    {
        var sizes = embodiment.Cameras.Select(c => (c.Width, c.Height)).Distinct().ToList();
        return new DatasetExpectations(embodiment.ActionDim, embodiment.StateDim, [.. embodiment.Cameras.Select(c => c.Name)],
            sizes.Count == 1 ? sizes[0].Width : null, sizes.Count == 1 ? sizes[0].Height : null);
    }

    private static string StatisticsJson(DatasetInspection inspection)
    {
        static object Feature(FeatureStatistics s) => new { min = s.Min, max = s.Max, mean = s.Mean, std = s.Std, q01 = s.Q01, q99 = s.Q99, count = s.Count };
        var statistics = inspection.Statistics!;
        return JsonSerializer.Serialize(new
        {
            episodes = inspection.Dataset!.Episodes.Count,
            frames = inspection.Dataset.TotalFrames,
            tasks = inspection.Dataset.Tasks.Count,
            spatial_annotations = inspection.SpatialAnnotationCount,
            action = Feature(statistics.Action),
            state = statistics.State is null ? null : Feature(statistics.State),
        });
    }
}
