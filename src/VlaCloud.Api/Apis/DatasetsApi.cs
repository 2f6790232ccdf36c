using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using VlaCloud.Api.RateLimiting;
using VlaCloud.Registry;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Api.Apis;

/// <summary>
/// <c>/v1/datasets</c>: datasets made by completed dataset uploads, with their validation outcome
/// (<c>validating → ready | failed</c>), the per-file problems and the statistics.
/// </summary>
public static class DatasetsApi
{
    /// <summary>Maps the group.</summary>
    public static IEndpointRouteBuilder MapDatasetsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/datasets").WithTags("Datasets").RequireTenantRateLimit().RequireAuthorization(ApiScopes.Training);
        group.MapGet("", ListAsync).WithName("ListDatasets").WithSummary("Lists the caller's datasets, newest first, optionally by status.");
        group.MapGet("/{id:guid}", GetAsync).WithName("GetDataset").WithSummary("Gets a dataset with its validation problems and statistics.");
        return app;
    }

    /// <remarks>
    /// The caller's tenant's datasets, newest first, paged with <c>after</c> and <c>limit</c> (400 for a limit outside
    /// 1–100). A dataset is made by completing an upload of purpose <c>dataset</c> and is validated in the background:
    /// <c>validating</c>, then <c>ready</c> (trainable) or <c>failed</c> (see its <c>issues</c>).
    /// </remarks>
    /// <param name="status">Only datasets in this state: `validating`, `ready` or `failed`.</param>
    private static async Task<Results<Ok<ListPage<DatasetResponse>>, ValidationProblem>> ListAsync(
        RegistryDbContext db, string? status, Guid? after, int? limit, CancellationToken cancellationToken)
    {
        if (ApiResults.CheckLimit(limit, out var take) is { } invalid) return invalid;
        var query = db.Datasets.AsNoTracking();
        if (status is not null) query = query.Where(d => d.Status == status);
        if (after is { } cursor) query = query.Where(d => d.Id < cursor);
        var rows = await query.OrderByDescending(d => d.Id).Take(take + 1).ToListAsync(cancellationToken);
        var names = await EmbodimentNamesAsync(db, rows.Select(r => r.EmbodimentId), cancellationToken);
        return TypedResults.Ok(ApiResults.Page(rows, take, d => d.Id, d => DatasetResponse.From(d, names.GetValueOrDefault(d.EmbodimentId))));
    }

    /// <remarks>
    /// The dataset with its embodiment, size, format, episode and frame counts, the validation problems per file
    /// (<c>issues</c>) and the statistics validation computed. 404 when no dataset of the caller's tenant has this id.
    /// Poll it after completing the upload until <c>status</c> is <c>ready</c> or <c>failed</c>.
    /// </remarks>
    /// <param name="id">The dataset's id.</param>
    private static async Task<Results<Ok<DatasetResponse>, ProblemHttpResult>> GetAsync(Guid id, RegistryDbContext db, CancellationToken cancellationToken)
    {
        var dataset = await db.Datasets.AsNoTracking().FirstOrDefaultAsync(d => d.Id == id, cancellationToken);
        if (dataset is null) return ApiResults.NotFound($"Dataset {id}");
        var names = await EmbodimentNamesAsync(db, [dataset.EmbodimentId], cancellationToken);
        return TypedResults.Ok(DatasetResponse.From(dataset, names.GetValueOrDefault(dataset.EmbodimentId)));
    }

    private static async Task<Dictionary<Guid, string>> EmbodimentNamesAsync(RegistryDbContext db, IEnumerable<Guid> ids, CancellationToken cancellationToken)
    {
        var wanted = ids.Distinct().ToList();
        return await db.Embodiments.AsNoTracking().Where(e => wanted.Contains(e.Id)).ToDictionaryAsync(e => e.Id, e => e.Name, cancellationToken);
    }
}

/// <summary>Server-side behaviour of the dataset contracts (the records live in <c>VlaCloud.Contracts</c>).</summary>
internal static class DatasetContractExtensions
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    extension(DatasetResponse)
    {
        internal static DatasetResponse From(Dataset d, string? embodiment) => new(
            d.Id, d.Name, d.Status, d.EmbodimentId, embodiment, d.UploadId, d.ArtifactSha256, d.SizeBytes, d.Format, d.Episodes, d.Frames,
            JsonSerializer.Deserialize<List<DatasetIssueResponse>>(d.Issues, Json) ?? [],
            Parse(d.Statistics ?? "{}"), d.CreatedAt, d.ValidatedAt);
    }

    private static JsonElement Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }
}
