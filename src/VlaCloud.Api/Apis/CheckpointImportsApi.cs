using System.Text.Json;
using Hangfire;
using Hangfire.States;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using VlaCloud.Api.Auth;
using VlaCloud.Api.RateLimiting;
using VlaCloud.Policy.InternVla;
using VlaCloud.Registry;
using VlaCloud.Registry.Artifacts;
using VlaCloud.Registry.Checkpoints;
using VlaCloud.Registry.Entities;
using VlaCloud.Api.Limits;

namespace VlaCloud.Api.Apis;

/// <summary>
/// <c>/v1/checkpoints/imports</c>: a released InternVLA-M1 run, uploaded as a bundle (upload purpose
/// <c>checkpoint_import</c>), converted by a trainer with the code of <c>vlacloud checkpoints import</c> and registered
/// as the next version of a model (<c>queued → running → succeeded | failed</c>).
/// </summary>
public static class CheckpointImportsApi
{
    /// <summary>The upload purpose of an import bundle.</summary>
    public const string UploadPurpose = "checkpoint_import";

    /// <summary>Most tag renames an import takes.</summary>
    public const int MaxRenames = 64;

    /// <summary>Maps the group.</summary>
    public static IEndpointRouteBuilder MapCheckpointImportsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/checkpoints/imports").WithTags("Checkpoints").RequireTenantRateLimit();
        group.MapPost("", CreateAsync).RequireAuthorization(ApiScopes.RegistryWrite).WithName("CreateCheckpointImport")
            .WithSummary("Imports a released InternVLA-M1 run from an uploaded bundle (config.yaml, dataset_statistics.json, checkpoints/steps_N_pytorch_model.pt, qwen/config.json, qwen/tokenizer.json): a trainer converts it and registers it as the next version of the model.")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);
        group.MapGet("/{id:guid}", GetAsync).RequireAuthorization(ApiScopes.RegistryRead).WithName("GetCheckpointImport")
            .WithSummary("Gets an import: queued, running, succeeded (with its checkpoint) or failed (with the file or tensor at fault).");
        return app;
    }

    /// <remarks>
    /// Takes the bundle as <c>upload</c> (a completed upload of purpose <c>checkpoint_import</c>) or as
    /// <c>artifact_sha256</c> (an artifact already stored), records the import as <c>queued</c> and answers 202 with it
    /// and its <c>Location</c>; a trainer converts it and registers the result as the next version of <c>model</c>. Poll
    /// <c>GET /v1/checkpoints/imports/{id}</c> until it succeeds or fails.
    ///
    /// Errors: 400 for an invalid model name, both or neither of <c>upload</c> and <c>artifact_sha256</c>, more than 64
    /// tag renames in <c>embodiments</c>, no target embodiment (name one, or map exactly one tag), a
    /// <c>checkpoint_file</c> that is not a bare <c>.pt</c> name, or an upload of another purpose; 404 when the
    /// embodiment, the upload or the artifact is not visible to the caller; 409 when the upload is not completed; 413
    /// (<c>storage_quota_exceeded</c>) when the bundle's size does not fit the tenant's storage quota.
    /// </remarks>
    private static async Task<Results<Accepted<CheckpointImportResponse>, ValidationProblem, ProblemHttpResult>> CreateAsync(
        CreateCheckpointImportRequest request, RegistryDbContext db, CheckpointRegistry registry, StorageQuota quota, CurrentTenant tenant,
        IBackgroundJobClient jobs, TimeProvider clock, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        if (!Names.IsValidModelName(request.Model ?? ""))
            errors["model"] = ["model must be 1-100 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit."];
        if ((request.Upload is null) == (request.ArtifactSha256 is null)) errors["upload"] = ["give the bundle as upload (an upload id) or as artifact_sha256, one of them."];
        else if (request.ArtifactSha256 is { } sha && !Sha256Hex.IsValid(sha)) errors["artifact_sha256"] = ["artifact_sha256 must be 64 hex characters."];
        var renames = request.Embodiments ?? new Dictionary<string, string>();
        if (renames.Count > MaxRenames) errors["embodiments"] = [$"embodiments maps at most {MaxRenames} tags."];
        else if (renames.Any(r => string.IsNullOrWhiteSpace(r.Key) || r.Key.Length > 200 || string.IsNullOrWhiteSpace(r.Value) || r.Value.Length > 100))
            errors["embodiments"] = ["embodiments maps dataset_statistics.json tags (1-200 characters) to embodiment names (1-100 characters)."];
        var target = request.Embodiment;
        if (target is null)
        {
            var names = renames.Values.Distinct(StringComparer.Ordinal).ToList();
            if (names.Count == 1) target = names[0];
            else errors["embodiment"] = ["embodiment (id or name) is required unless embodiments maps exactly one tag."];
        }
        else if (string.IsNullOrWhiteSpace(target) || target.Length > 100) errors["embodiment"] = ["embodiment must be an id or a name of 1-100 characters."];
        if (request.CheckpointFile is { } file && !CheckpointImportBundle.IsCheckpointFileName(file))
            errors["checkpoint_file"] = ["checkpoint_file must be a .pt file name in the bundle's checkpoints/ folder (letters, digits, '.', '_', '-'; no folders)."];
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);

        var embodiment = await registry.FindEmbodimentAsync(target!, cancellationToken);
        if (embodiment is null) return ApiResults.NotFound($"Embodiment '{target}'");

        string bundleSha;
        Guid? uploadId = null;
        if (request.Upload is { } id)
        {
            // The tenant filter makes another tenant's upload a 404.
            var upload = await db.Uploads.AsNoTracking().FirstOrDefaultAsync(u => u.Id == id, cancellationToken);
            if (upload is null) return ApiResults.NotFound($"Upload {id}");
            if (upload.Purpose != UploadPurpose) return ApiResults.Invalid("upload", $"upload {id} has purpose '{upload.Purpose}'; an import bundle is uploaded with purpose '{UploadPurpose}'.");
            if (upload.Status != UploadStatus.Completed || upload.ArtifactSha256 is null)
                return TypedResults.Problem(statusCode: 409, title: "Conflict", detail: $"Upload {id} is {upload.Status}; complete it first.");
            bundleSha = upload.ArtifactSha256;
            uploadId = id;
        }
        else bundleSha = request.ArtifactSha256!.ToLowerInvariant();
        var artifact = await db.Artifacts.AsNoTracking().Where(a => a.Sha256 == bundleSha).OrderBy(a => a.TenantId == null).FirstOrDefaultAsync(cancellationToken);
        if (artifact is null) return ApiResults.NotFound($"Artifact {bundleSha}");

        // The converted checkpoint is about the bundle's size (F32 heads, Qwen's BF16 weights widened to F32 make it up to
        // twice that); the bundle's size must at least fit now, and the job checks the result's own size before storing it.
        var storage = await quota.GetAsync(tenant.TenantId!.Value, tenant.Limits, cancellationToken);
        if (!storage.Fits(artifact.SizeBytes)) return ApiResults.StorageFull(storage, artifact.SizeBytes, "The imported checkpoint");

        var import = new CheckpointImport
        {
            TenantId = tenant.TenantId, Model = request.Model!, EmbodimentId = embodiment.Id,
            Embodiments = JsonSerializer.Serialize(renames), CheckpointFile = request.CheckpointFile, UploadId = uploadId,
            ArtifactSha256 = artifact.Sha256, SizeBytes = artifact.SizeBytes, CreatedByKeyId = tenant.KeyId, CreatedAt = clock.GetUtcNow(),
        };
        db.CheckpointImports.Add(import);
        await db.SaveChangesAsync(cancellationToken);
        jobs.Create<CheckpointImportJob>(job => job.RunAsync(import.Id, CancellationToken.None), new EnqueuedState(HangfireSetup.DefaultQueue));
        return TypedResults.Accepted($"/v1/checkpoints/imports/{import.Id}", CheckpointImportResponse.From(import, embodiment.Name));
    }

    /// <remarks>
    /// An import of the caller's tenant: <c>queued</c>, <c>running</c>, <c>succeeded</c> (with <c>checkpoint_id</c>, the
    /// registered version) or <c>failed</c> (with <c>error</c> naming the file or tensor at fault). 404 for any other id.
    /// </remarks>
    /// <param name="id">The import's id (from POST /v1/checkpoints/imports).</param>
    private static async Task<Results<Ok<CheckpointImportResponse>, ProblemHttpResult>> GetAsync(Guid id, RegistryDbContext db, CancellationToken cancellationToken)
    {
        var import = await db.CheckpointImports.AsNoTracking().FirstOrDefaultAsync(i => i.Id == id, cancellationToken);
        if (import is null) return ApiResults.NotFound($"Import {id}");
        var name = await db.Embodiments.AsNoTracking().Where(e => e.Id == import.EmbodimentId).Select(e => e.Name).FirstOrDefaultAsync(cancellationToken);
        return TypedResults.Ok(CheckpointImportResponse.From(import, name));
    }
}

/// <summary>Server-side behaviour of the import contracts (the records live in <c>VlaCloud.Contracts</c>).</summary>
internal static class CheckpointImportContractExtensions
{
    extension(CheckpointImportResponse)
    {
        internal static CheckpointImportResponse From(CheckpointImport i, string? embodiment) => new(
            i.Id, i.Status, i.Model, i.EmbodimentId, embodiment,
            JsonSerializer.Deserialize<Dictionary<string, string>>(i.Embodiments) ?? [],
            i.UploadId, i.ArtifactSha256, i.SizeBytes, i.CheckpointFile, i.CheckpointId, i.Error, i.CreatedAt, i.StartedAt, i.FinishedAt);
    }
}
