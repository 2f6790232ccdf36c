using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using VlaCloud.Api.Auth;
using VlaCloud.Api.Idempotency;
using VlaCloud.Api.RateLimiting;
using VlaCloud.Inference;
using VlaCloud.Policy;
using VlaCloud.Registry;
using VlaCloud.Registry.Artifacts;
using VlaCloud.Registry.Checkpoints;
using VlaCloud.Registry.Entities;
using VlaCloud.Api.Limits;

namespace VlaCloud.Api.Apis;

/// <summary>
/// <c>/v1/checkpoints</c>: put an artifact, register it as a new version, list, get and resolve.
/// </summary>
public static class CheckpointsApi
{
    /// <summary>Largest artifact a single put accepts (larger ones go through uploads in parts).</summary>
    public const long MaxArtifactBytes = 20L << 30;

    /// <summary>Maps the group.</summary>
    public static IEndpointRouteBuilder MapCheckpointsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/checkpoints").WithTags("Checkpoints").RequireTenantRateLimit();
        var read = group.MapGroup("").RequireAuthorization(ApiScopes.RegistryRead);
        var write = group.MapGroup("").RequireAuthorization(ApiScopes.RegistryWrite);

        read.MapGet("", ListAsync).WithName("ListCheckpoints")
            .WithSummary("Lists visible checkpoints (the caller's and public ones), newest first, filtered by model and embodiment.")
            .ProducesProblem(StatusCodes.Status404NotFound);
        read.MapGet("/{id:guid}", GetAsync).WithName("GetCheckpoint")
            .WithSummary("Gets one checkpoint by id.");
        read.MapGet("/{id:guid}/content", ContentAsync).WithName("GetCheckpointContent")
            .WithSummary("Downloads a checkpoint's artifact (a tar of model.safetensors, config.json, tokenizer.json, normalization.json and manifest.json; docs/export.md), with range requests, a strong ETag (its SHA-256) and the SHA-256 in Repr-Digest and X-Content-SHA256.")
            .Produces(StatusCodes.Status200OK, contentType: ContentType)
            .Produces(StatusCodes.Status206PartialContent, contentType: ContentType)
            .Produces(StatusCodes.Status304NotModified)
            .Produces(StatusCodes.Status416RangeNotSatisfiable)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        read.MapGet("/resolve", ResolveAsync).WithName("ResolveCheckpoint")
            .WithSummary("Resolves a reference (id, model@vN or model@alias) to a checkpoint, as inference does.")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound);
        write.MapPost("/artifacts", PutArtifactAsync).WithName("PutCheckpointArtifact")
            .WithSummary("Stores a checkpoint file (the request body) by its SHA-256; register it with POST /v1/checkpoints.")
            .Accepts<Stream>("application/octet-stream")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .WithMetadata(new SkipIdempotencyAttribute(), new RequestSizeLimitAttribute(MaxArtifactBytes));
        write.MapPost("", RegisterAsync).WithName("RegisterCheckpoint")
            .WithSummary("Registers a stored artifact as the next version of a model for an embodiment, once it is checked to be a checkpoint that can be served (422 otherwise).")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        return app;
    }

    /// <remarks>
    /// The caller's tenant's checkpoints and the public ones, newest first, paged with <c>after</c> and <c>limit</c>
    /// (400 for a limit outside 1–100). 404 when <c>embodiment</c> names no embodiment the caller can see.
    /// </remarks>
    /// <param name="model">Only the versions of this model (exact name).</param>
    /// <param name="embodiment">Only checkpoints for this embodiment (its name or id); 404 if none has it.</param>
    private static async Task<Results<Ok<ListPage<CheckpointResponse>>, ValidationProblem, ProblemHttpResult>> ListAsync(
        RegistryDbContext db, CheckpointRegistry registry, string? model, string? embodiment, Guid? after, int? limit, CancellationToken cancellationToken)
    {
        if (ApiResults.CheckLimit(limit, out var take) is { } invalid) return invalid;
        var query = db.Checkpoints.AsNoTracking().Include(c => c.Embodiment).AsQueryable();
        if (model is not null) query = query.Where(c => c.ModelName == model);
        if (embodiment is not null)
        {
            if (await registry.FindEmbodimentAsync(embodiment, cancellationToken) is not { } target)
                return ApiResults.NotFound($"Embodiment '{embodiment}'");
            query = query.Where(c => c.EmbodimentId == target.Id);
        }
        if (after is { } cursor) query = query.Where(c => c.Id < cursor);
        var rows = await query.OrderByDescending(c => c.Id).Take(take + 1).ToListAsync(cancellationToken);
        return TypedResults.Ok(ApiResults.Page(rows, take, c => c.Id, CheckpointResponse.From));
    }

    /// <remarks>
    /// A checkpoint of the caller's tenant or a public one, with its configuration, normalisation statistics, metrics
    /// and lineage (parent, dataset, job). 404 for any other id, another tenant's included.
    /// </remarks>
    /// <param name="id">The checkpoint's id.</param>
    private static async Task<Results<Ok<CheckpointResponse>, ProblemHttpResult>> GetAsync(
        Guid id, RegistryDbContext db, CancellationToken cancellationToken) =>
        await db.Checkpoints.AsNoTracking().Include(c => c.Embodiment).FirstOrDefaultAsync(c => c.Id == id, cancellationToken) is { } checkpoint
            ? TypedResults.Ok(CheckpointResponse.From(checkpoint))
            : ApiResults.NotFound($"Checkpoint {id}");

    /// <summary>The media type of a checkpoint artifact (the tar <see cref="PolicyCheckpoint.Pack"/> writes).</summary>
    public const string ContentType = "application/x-tar";

    /// <summary>The response header carrying the artifact's SHA-256 in hex (Repr-Digest carries it too, RFC 9530's base64 form).</summary>
    public const string Sha256Header = "X-Content-SHA256";

    /// <remarks>
    /// Streams the artifact of a checkpoint the caller can see (its tenant's or a public one) as
    /// <c>{model}-v{version}.tar</c>. The bytes under an id never change, so <c>If-None-Match</c> with the ETag answers 304
    /// without reading the store; <c>Range</c> (with <c>If-Range</c>) resumes a download with 206, and 416 answers a range
    /// past the end. A whole download is hashed as it streams and aborted, never completed, if the stored blob no
    /// longer matches its SHA-256. 404 for a checkpoint the caller cannot see; 503 when the artifact store cannot return the
    /// artifact.
    /// </remarks>
    /// <param name="id">The checkpoint's id.</param>
    private static async Task<IResult> ContentAsync(Guid id, HttpContext context, RegistryDbContext db, IArtifactStore store, CancellationToken cancellationToken)
    {
        // The tenant filter makes another tenant's checkpoint a 404, as every route does; public ones are everyone's.
        var checkpoint = await db.Checkpoints.AsNoTracking().Where(c => c.Id == id)
            .Select(c => new { c.Sha256, c.ModelName, c.Version }).FirstOrDefaultAsync(cancellationToken);
        if (checkpoint is null) return ApiResults.NotFound($"Checkpoint {id}");
        var etag = new Microsoft.Net.Http.Headers.EntityTagHeaderValue($"\"{checkpoint.Sha256}\"");
        var headers = context.Response.Headers;
        headers[Sha256Header] = checkpoint.Sha256;
        headers["Repr-Digest"] = $"sha-256=:{Convert.ToBase64String(Convert.FromHexString(checkpoint.Sha256))}:";
        // The bytes never change under an id (content addressed), so a client that has them is told so before the
        // store is asked.
        if (context.Request.GetTypedHeaders().IfNoneMatch is { Count: > 0 } noneMatch
            && noneMatch.Any(e => e.Tag == etag.Tag || e.Tag == "*"))
        {
            headers.ETag = etag.ToString();
            return TypedResults.StatusCode(StatusCodes.Status304NotModified);
        }
        Stream content;
        try
        {
            // The registry's hash is the blob's: it is not recomputed before the first byte (a full read of a multi-GB file
            // per request, ranges included). A whole download is hashed as it streams and aborted at its end if the blob no
            // longer matches, so it never completes with corrupted weights; a range is checked by its client against the header.
            content = new Sha256CheckingStream(await store.OpenStoredAsync(checkpoint.Sha256, cancellationToken), checkpoint.Sha256);
        }
        catch (Exception e) when (e is FileNotFoundException or ArtifactCorruptedException)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Artifact unavailable",
                detail: $"Checkpoint {id}'s artifact cannot be read from the artifact store ({e.Message}).");
        }
        // The stream is seekable (a local file), so range requests (resumed downloads) are served from it; If-Range with
        // the ETag makes a resume safe.
        return TypedResults.Stream(content, ContentType, $"{checkpoint.ModelName}-v{checkpoint.Version}.tar", entityTag: etag, enableRangeProcessing: true);
    }

    /// <remarks>
    /// Answers the checkpoint a request with this reference would run now: the caller's own versions and aliases win
    /// over public ones of the same name. 400 for a malformed reference, or a <c>model@vN</c> that exists for several
    /// embodiments when none is named; 404 when nothing visible to the caller matches.
    /// </remarks>
    /// <param name="reference">The reference to resolve: a checkpoint id, `model@vN` or `model@alias` (e.g. `sim-demo@production`).</param>
    /// <param name="embodiment">The embodiment the checkpoint must be for (its name or id), as inference checks it; omit to accept any.</param>
    private static async Task<Results<Ok<CheckpointResponse>, ProblemHttpResult>> ResolveAsync(
        [FromQuery(Name = "ref")] string reference, string? embodiment, CheckpointRegistry registry, CancellationToken cancellationToken)
    {
        try
        {
            return TypedResults.Ok(CheckpointResponse.From(await registry.ResolveAsync(reference, embodiment, cancellationToken)));
        }
        catch (RegistryException e)
        {
            return ApiResults.Problem(e);
        }
    }

    /// <remarks>
    /// The request body is the checkpoint tar itself (<c>application/octet-stream</c>, up to 20 GiB; larger files go
    /// through <c>/v1/uploads</c>). It is stored by its SHA-256, so putting the same bytes again stores nothing new and
    /// answers the same address; 201 with the SHA-256, size and address. An artifact that is not registered within a day
    /// is removed. 400 for an empty body; 413 (<c>storage_quota_exceeded</c>, with the numbers) when it does not fit the
    /// tenant's storage quota, judged from <c>Content-Length</c> before a byte is stored. Not idempotent by
    /// <c>Idempotency-Key</c>: the body is a stream, and content addressing makes a retry safe anyway.
    /// </remarks>
    private static async Task<Results<Created<ArtifactResponse>, ProblemHttpResult>> PutArtifactAsync(
        HttpRequest request, IArtifactStore store, RegistryDbContext db, StorageQuota quota, CurrentTenant tenant, TimeProvider clock,
        CancellationToken cancellationToken)
    {
        if (request.ContentLength == 0)
            return TypedResults.Problem(statusCode: 400, title: "Empty artifact", detail: "Send the checkpoint file as the request body.");
        var owner = tenant.TenantId;
        var storage = await quota.GetAsync(owner!.Value, tenant.Limits, cancellationToken);
        // An announced size is refused before a byte is stored; a chunked body is measured and then judged.
        if (request.ContentLength is { } announced && !storage.Fits(announced)) return ApiResults.StorageFull(storage, announced, "The artifact");
        var info = await store.PutAsync(request.Body, cancellationToken);
        if (info.SizeBytes == 0)
            return TypedResults.Problem(statusCode: 400, title: "Empty artifact", detail: "Send the checkpoint file as the request body.");
        if (!await db.Artifacts.AnyAsync(a => a.TenantId == owner && a.Sha256 == info.Sha256, cancellationToken))
        {
            // Refused bytes stay in the store unclaimed, and garbage collection deletes them.
            if (!storage.Fits(info.SizeBytes)) return ApiResults.StorageFull(storage, info.SizeBytes, "The artifact");
            await db.InsertArtifactRowAsync(owner, info, "checkpoint", clock.GetUtcNow(), cancellationToken);
        }
        return TypedResults.Created(ArtifactAddress(info.Sha256), new ArtifactResponse(info.Sha256, info.SizeBytes, ArtifactAddress(info.Sha256)));
    }

    /// <summary>
    /// An artifact's address as tenants see it. The store's own URI (a server path, a bucket) stays inside: it tells a
    /// tenant nothing it can use and an attacker how the server is laid out.
    /// </summary>
    internal static string ArtifactAddress(string sha256) => $"/v1/checkpoints/artifacts/{sha256}";

    /// <remarks>
    /// Registers an artifact stored with <c>POST /v1/checkpoints/artifacts</c> (or a completed upload of purpose
    /// <c>checkpoint</c>) as the next version of <c>model</c> for the embodiment: versions count from 1 per tenant, model
    /// and embodiment, without gaps or duplicates under concurrent registrations. The artifact is first loaded as
    /// inference would load it, so a checkpoint that cannot be served is refused now rather than on every request.
    /// Answers 201 with the checkpoint and its <c>Location</c>.
    ///
    /// Errors: 400 for a malformed field (<c>artifact_sha256</c> not 64 hex characters, <c>config</c> or
    /// <c>normalization_stats</c> not an object, an invalid model name); 404 when the embodiment, the artifact, the
    /// parent checkpoint, the dataset or the fine-tuning job is not visible to the caller; 409 when
    /// <c>fine_tuning_job_id</c> names one of the caller's jobs (a job registers its own result); 422 when the artifact
    /// is not a checkpoint that can be served, or cannot be read from the store (put it again).
    /// </remarks>
    private static async Task<Results<Created<CheckpointResponse>, ValidationProblem, ProblemHttpResult>> RegisterAsync(
        RegisterCheckpointRequest request, CheckpointRegistry registry, CheckpointInspector inspector, RegistryDbContext db, CurrentTenant tenant,
        CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        if (!Sha256Hex.IsValid(request.ArtifactSha256)) errors["artifact_sha256"] = ["artifact_sha256 must be 64 hex characters."];
        if (string.IsNullOrEmpty(request.Embodiment)) errors["embodiment"] = ["embodiment (id or name) is required."];
        if (request.Config.ValueKind != JsonValueKind.Object) errors["config"] = ["config must be a JSON object."];
        if (request.NormalizationStats.ValueKind != JsonValueKind.Object) errors["normalization_stats"] = ["normalization_stats must be a JSON object."];
        if (request.Metrics.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null or JsonValueKind.Undefined))
            errors["metrics"] = ["metrics must be a JSON object."];
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);

        // The artifact is checked as a load would check it, before anything is registered: a checkpoint that cannot be
        // served (not a checkpoint, a config out of range or past a device's memory, weights that do not fit the config)
        // is refused now rather than failing every request.
        var sha = request.ArtifactSha256.ToLowerInvariant();
        if (await db.Artifacts.AsNoTracking().AnyAsync(a => a.Sha256 == sha, cancellationToken))
        {
            try
            {
                await inspector.InspectAsync(sha, cancellationToken);
            }
            catch (CheckpointException e)
            {
                return ApiResults.Unprocessable("artifact_sha256", "The artifact is not a checkpoint that can be served.", e.Message);
            }
            catch (Exception e) when (e is FileNotFoundException or ArtifactCorruptedException)
            {
                return ApiResults.Unprocessable("artifact_sha256", "The artifact cannot be read from the artifact store; put it again.", e.Message);
            }
        }
        try
        {
            var checkpoint = await registry.RegisterAsync(new CheckpointRegistration(
                request.Embodiment, request.Model, request.ArtifactSha256, request.Config.GetRawText(), request.NormalizationStats.GetRawText(),
                request.Metrics.ValueKind == JsonValueKind.Object ? request.Metrics.GetRawText() : null,
                request.ParentCheckpointId, request.DatasetId, request.FineTuningJobId, tenant.KeyId), cancellationToken);
            return TypedResults.Created($"/v1/checkpoints/{checkpoint.Id}", CheckpointResponse.From(checkpoint));
        }
        catch (RegistryException e)
        {
            return ApiResults.Problem(e);
        }
    }
}

/// <summary>Server-side behaviour of the checkpoint contracts (the records live in <c>VlaCloud.Contracts</c>).</summary>
internal static class CheckpointContractExtensions
{
    extension(CheckpointResponse)
    {
        internal static CheckpointResponse From(Checkpoint c) => new(
            c.Id, c.ModelName, c.Version, c.TenantId is null, c.EmbodimentId, c.Embodiment?.Name, CheckpointsApi.ArtifactAddress(c.Sha256), c.Sha256, c.SizeBytes,
            Parse(c.Config), Parse(c.NormalizationStats), Parse(c.Metrics ?? "{}"),
            c.ParentCheckpointId, c.DatasetId, c.FineTuningJobId, c.CreatedAt);
    }

    private static JsonElement Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }
}
