using System.Security.Cryptography;
using Hangfire;
using Hangfire.States;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;
using VlaCloud.Api.Auth;
using VlaCloud.Api.Idempotency;
using VlaCloud.Api.RateLimiting;
using VlaCloud.Api.Validation;
using VlaCloud.Registry;
using VlaCloud.Registry.Artifacts;
using VlaCloud.Registry.Checkpoints;
using VlaCloud.Registry.Entities;
using VlaCloud.Api.Limits;
using VlaCloud.Registry.Uploads;
using VlaCloud.Training.Jobs;

namespace VlaCloud.Api.Apis;

/// <summary>
/// <c>/v1/uploads</c> (OpenAI's Uploads shape): create with the file's size and SHA-256, send parts in any order
/// (a retried part replaces the earlier one), complete. Completion assembles the parts in order, verifies size and
/// hash, stores the file as an artifact and, for a dataset, creates it in <c>validating</c> and queues its validation.
/// </summary>
public static class UploadsApi
{
    /// <summary>Maps the group.</summary>
    public static IEndpointRouteBuilder MapUploadsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/uploads").WithTags("Uploads").RequireTenantRateLimit().RequireAuthorization(ApiScopes.Training);
        group.MapPost("", CreateAsync).WithName("CreateUpload")
            .WithSummary("Creates an upload for a file of known size and SHA-256 (purpose dataset, checkpoint or checkpoint_import); it expires unless completed.")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);
        group.MapGet("/{id:guid}", GetAsync).WithName("GetUpload").WithSummary("Gets an upload with the parts received so far.");
        group.MapPut("/{id:guid}/parts/{n:int}", PutPartAsync).WithName("PutUploadPart")
            .WithSummary("Stores part n (from 1) of an upload from the request body; sending a part again replaces it.")
            .Accepts<Stream>("application/octet-stream")
            .WithMetadata(new SkipIdempotencyAttribute(), new RequestSizeLimitAttribute(UploadOptionsDefaults.MaxPartRequestBytes));
        group.MapPost("/{id:guid}/complete", CompleteAsync).WithName("CompleteUpload")
            .WithSummary("Assembles the parts in order, verifies size and SHA-256 and stores the file; a dataset upload becomes a dataset in validation.");
        group.MapPost("/{id:guid}/cancel", CancelAsync).WithName("CancelUpload").WithSummary("Cancels an incomplete upload and deletes its parts.");
        return app;
    }

    /// <remarks>
    /// Creates a <c>pending</c> upload for the caller's tenant and answers 201 with its id, its <c>Location</c> and when
    /// it expires; the announced size is reserved from the tenant's storage quota until the upload completes, is
    /// cancelled or expires. Then send the parts (<c>PUT /v1/uploads/{id}/parts/{n}</c>) and complete it.
    ///
    /// Errors: 400 for a missing or too long filename, a size out of range or needing too many parts, a
    /// <c>sha256</c> that is not 64 hex characters, an unknown <c>purpose</c>, or a too long <c>mime_type</c> or
    /// <c>embodiment</c>; 404 when <c>embodiment</c> names no embodiment the caller can see; 413
    /// (<c>storage_quota_exceeded</c>) when the size does not fit the tenant's storage quota.
    /// </remarks>
    private static async Task<Results<Created<UploadResponse>, ValidationProblem, ProblemHttpResult>> CreateAsync(
        CreateUploadRequest request, RegistryDbContext db, CheckpointRegistry registry, StorageQuota quota, CurrentTenant tenant,
        IOptions<UploadOptions> options, TimeProvider clock, CancellationToken cancellationToken)
    {
        var limits = options.Value;
        var errors = new Dictionary<string, string[]>();
        var filenameLength = db.MaxLength((Upload u) => u.Filename);
        if (string.IsNullOrWhiteSpace(request.Filename) || request.Filename.Length > filenameLength) errors["filename"] = [$"filename is required (at most {filenameLength} characters)."];
        if (request.Bytes < 1 || request.Bytes > limits.MaxUploadBytes) errors["bytes"] = [$"bytes must be between 1 and {limits.MaxUploadBytes}."];
        else if ((request.Bytes + limits.MaxPartBytes - 1) / limits.MaxPartBytes > limits.MaxParts)
            errors["bytes"] = [$"a file of {request.Bytes} bytes needs more than {limits.MaxParts} parts of at most {limits.MaxPartBytes} bytes."];
        if (!Sha256Hex.IsValid(request.Sha256)) errors["sha256"] = ["sha256 must be 64 hex characters."];
        if (request.Purpose is not ("dataset" or "checkpoint" or CheckpointImportsApi.UploadPurpose))
            errors["purpose"] = [$"purpose must be dataset, checkpoint or {CheckpointImportsApi.UploadPurpose}."];
        errors.CheckLength(db, (Upload u) => u.MimeType, "mime_type", request.MimeType);
        errors.CheckLength(db, (Upload u) => u.Embodiment, "embodiment", request.Embodiment);
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        if (request.Embodiment is { } embodiment && await registry.FindEmbodimentAsync(embodiment, cancellationToken) is null)
            return ApiResults.NotFound($"Embodiment '{embodiment}'");
        // The announced size is reserved from the quota until the upload completes, is cancelled or expires.
        var storage = await quota.GetAsync(tenant.TenantId!.Value, tenant.Limits, cancellationToken);
        if (!storage.Fits(request.Bytes)) return ApiResults.StorageFull(storage, request.Bytes, "The upload");

        var now = clock.GetUtcNow();
        var upload = new Upload
        {
            TenantId = tenant.TenantId, Filename = request.Filename, Bytes = request.Bytes, Sha256 = request.Sha256.ToLowerInvariant(),
            Purpose = request.Purpose, MimeType = request.MimeType, Embodiment = request.Embodiment, CreatedByKeyId = tenant.KeyId,
            CreatedAt = now, ExpiresAt = now + limits.Lifetime,
        };
        db.Uploads.Add(upload);
        await db.SaveChangesAsync(cancellationToken);
        return TypedResults.Created($"/v1/uploads/{upload.Id}", UploadResponse.From(upload));
    }

    /// <remarks>
    /// An upload of the caller's tenant with its status, the parts received (number, size, SHA-256) and the bytes so
    /// far, so a client that was interrupted sends only what is missing; once completed, the stored artifact and, for a
    /// dataset, the dataset it made. 404 for any other id.
    /// </remarks>
    /// <param name="id">The upload's id.</param>
    private static async Task<Results<Ok<UploadResponse>, ProblemHttpResult>> GetAsync(Guid id, RegistryDbContext db, CancellationToken cancellationToken) =>
        await db.Uploads.AsNoTracking().Include(u => u.Parts).FirstOrDefaultAsync(u => u.Id == id, cancellationToken) is { } upload
            ? TypedResults.Ok(UploadResponse.From(upload))
            : ApiResults.NotFound($"Upload {id}");

    /// <remarks>
    /// The request body is the part's bytes (<c>application/octet-stream</c>, at most 64 MiB by default); answers 200 with the
    /// part's size and SHA-256. Parts may arrive in any order and in parallel; sending a part again replaces it, which is
    /// how a failed part is retried (<c>Idempotency-Key</c> does not apply: the body is a stream). 400 for a part number
    /// outside 1 to the part limit (10000 by default) or an empty or oversized part; 404 for an upload the caller cannot see; 409 when the upload is no
    /// longer pending or has expired.
    /// </remarks>
    /// <param name="id">The upload's id.</param>
    /// <param name="n">The part's number, from 1; parts may arrive in any order and a part sent again replaces it.</param>
    private static async Task<Results<Ok<UploadPartResponse>, ValidationProblem, ProblemHttpResult>> PutPartAsync(
        Guid id, int n, HttpRequest request, RegistryDbContext db, UploadPartStore parts, IOptions<UploadOptions> options, TimeProvider clock,
        CancellationToken cancellationToken)
    {
        var limits = options.Value;
        var upload = await db.Uploads.AsNoTracking().FirstOrDefaultAsync(u => u.Id == id, cancellationToken);
        if (upload is null) return ApiResults.NotFound($"Upload {id}");
        if (Refusal(upload, clock) is { } refused) return refused;
        if (n < 1 || n > limits.MaxParts) return ApiResults.Invalid("n", $"part numbers run from 1 to {limits.MaxParts}.");
        if (request.ContentLength > limits.MaxPartBytes) return PartTooLarge(limits);

        var written = await parts.WriteAsync(id, n, request.Body, limits.MaxPartBytes, cancellationToken);
        if (written is not { } part) return PartTooLarge(limits);
        if (part.Size == 0) return ApiResults.Invalid("body", "a part must not be empty.");
        var now = clock.GetUtcNow();
        // Upsert: a retried part replaces the earlier row as its file replaced the earlier bytes.
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO upload_parts (upload_id, part_number, size_bytes, sha256, received_at) VALUES ({id}, {n}, {part.Size}, {part.Sha256}, {now})
            ON CONFLICT (upload_id, part_number) DO UPDATE SET size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256, received_at = EXCLUDED.received_at
            """, cancellationToken);
        return TypedResults.Ok(new UploadPartResponse(id, n, part.Size, part.Sha256, now));
    }

    /// <remarks>
    /// Assembles the parts 1..N in order, checks their total size and SHA-256 against the ones announced, and stores the
    /// file as an artifact (its bytes are hashed before they are stored, so a mismatch stores nothing). An upload of
    /// purpose <c>dataset</c> then becomes a dataset in <c>validating</c> (its id in <c>dataset_id</c>), validated in the
    /// background; one of purpose <c>checkpoint</c> is ready for <c>POST /v1/checkpoints</c>, one of purpose
    /// <c>checkpoint_import</c> for <c>POST /v1/checkpoints/imports</c>. The body is optional.
    ///
    /// Errors: 400 when a dataset upload has no embodiment (at creation or here) or <c>part_numbers</c> differs from
    /// the parts received; 404 for an upload or embodiment the caller cannot see; 409 when the upload is not pending or
    /// has expired, the parts have gaps, their sizes do not add up to the announced size, the assembled SHA-256 differs
    /// (send the wrong parts again), or another request completed or cancelled it meanwhile.
    /// </remarks>
    /// <param name="id">The upload's id.</param>
    private static async Task<Results<Ok<UploadResponse>, ValidationProblem, ProblemHttpResult>> CompleteAsync(
        Guid id, CompleteUploadRequest? request, RegistryDbContext db, UploadPartStore parts, IArtifactStore store, CheckpointRegistry registry,
        IBackgroundJobClient jobs, TimeProvider clock, ILogger<UploadPartStore> logger, CancellationToken cancellationToken)
    {
        var upload = await db.Uploads.Include(u => u.Parts).FirstOrDefaultAsync(u => u.Id == id, cancellationToken);
        if (upload is null) return ApiResults.NotFound($"Upload {id}");
        if (Refusal(upload, clock) is { } refused) return refused;

        Embodiment? embodiment = null;
        if (upload.Purpose == "dataset")
        {
            var name = request?.Embodiment ?? upload.Embodiment;
            if (name is null) return ApiResults.Invalid("embodiment", "a dataset upload needs an embodiment (id or name), at creation or completion.");
            embodiment = await registry.FindEmbodimentAsync(name, cancellationToken);
            if (embodiment is null) return ApiResults.NotFound($"Embodiment '{name}'");
        }

        var ordered = upload.Parts.OrderBy(p => p.PartNumber).ToList();
        if (request?.PartNumbers is { Count: > 0 } listed && !listed.SequenceEqual(ordered.Select(p => p.PartNumber)))
            return ApiResults.Invalid("part_numbers", $"the parts received are [{string.Join(", ", ordered.Select(p => p.PartNumber))}], not the ones listed.");
        if (ordered.Count == 0 || ordered[^1].PartNumber != ordered.Count)
            return Conflict($"Parts must be numbered 1..N without gaps; received [{string.Join(", ", ordered.Select(p => p.PartNumber))}].");
        var total = ordered.Sum(p => p.SizeBytes);
        if (total != upload.Bytes)
            return Conflict($"The parts add up to {total} bytes; the upload was created for {upload.Bytes}.");

        // Hash first and put second, so a mismatch leaves nothing in the artifact store.
        using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            await using var assembled = new ConcatenatedParts(parts, id, ordered.Select(p => p.PartNumber).ToList(), cancellationToken);
            var buffer = new byte[1 << 16];
            int read;
            while ((read = await assembled.ReadAsync(buffer, cancellationToken)) > 0) hash.AppendData(buffer, 0, read);
            var actual = Convert.ToHexStringLower(hash.GetHashAndReset());
            if (actual != upload.Sha256)
                return Conflict($"The assembled file's SHA-256 is {actual}; the upload was created with {upload.Sha256}. Send the wrong parts again.");
        }
        ArtifactInfo info;
        // The parts are read back from the store in order and put as one blob there: with several API replicas the parts
        // may have reached any of them, and none keeps a copy.
        await using (var assembled = new ConcatenatedParts(parts, id, ordered.Select(p => p.PartNumber).ToList(), cancellationToken))
            info = await store.PutAsync(assembled, cancellationToken);

        var now = clock.GetUtcNow();
        if (!await db.Artifacts.AnyAsync(a => a.TenantId == upload.TenantId && a.Sha256 == info.Sha256, cancellationToken))
            db.Artifacts.Add(new Artifact { TenantId = upload.TenantId, Sha256 = info.Sha256, SizeBytes = info.SizeBytes, Uri = info.Uri, Kind = upload.Purpose, CreatedAt = now });
        Dataset? dataset = null;
        if (embodiment is not null)
        {
            dataset = new Dataset
            {
                TenantId = upload.TenantId, Name = upload.Filename, EmbodimentId = embodiment.Id, UploadId = upload.Id,
                ArtifactSha256 = info.Sha256, SizeBytes = info.SizeBytes, CreatedAt = now,
            };
            db.Datasets.Add(dataset);
            upload.DatasetId = dataset.Id;
        }
        upload.Status = UploadStatus.Completed;
        upload.CompletedAt = now;
        upload.ArtifactSha256 = info.Sha256;
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateConcurrencyException)
        {
            return Conflict("The upload was completed or cancelled concurrently.");
        }
        catch (DbUpdateException e) when (e.IsUniqueViolation())
        {
            return Conflict("The upload was completed concurrently; get it again.");
        }
        if (dataset is not null)
            jobs.Create<DatasetValidationJob>(job => job.RunAsync(dataset.Id, CancellationToken.None), new EnqueuedState(HangfireSetup.DefaultQueue));
        try
        {
            await parts.DeleteAsync(id, CancellationToken.None);
        }
        catch (Exception e) when (e is IOException or Amazon.S3.AmazonS3Exception)
        {
            logger.LogWarning(e, "Could not delete the parts of upload {UploadId}; the cleanup job will", id);
        }
        return TypedResults.Ok(UploadResponse.From(upload));
    }

    /// <remarks>
    /// Marks a pending upload <c>cancelled</c>, frees its reservation of the storage quota and deletes the parts
    /// received. 404 for an upload the caller cannot see; 409 when it is already completed, cancelled or expired, or was
    /// completed or cancelled concurrently.
    /// </remarks>
    /// <param name="id">The upload's id.</param>
    private static async Task<Results<Ok<UploadResponse>, ProblemHttpResult>> CancelAsync(
        Guid id, RegistryDbContext db, UploadPartStore parts, TimeProvider clock, CancellationToken cancellationToken)
    {
        var upload = await db.Uploads.Include(u => u.Parts).FirstOrDefaultAsync(u => u.Id == id, cancellationToken);
        if (upload is null) return ApiResults.NotFound($"Upload {id}");
        if (upload.Status != UploadStatus.Pending) return Conflict($"The upload is {upload.Status}.");
        upload.Status = UploadStatus.Cancelled;
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateConcurrencyException)
        {
            return Conflict("The upload was completed or cancelled concurrently.");
        }
        await parts.DeleteAsync(id, CancellationToken.None);
        return TypedResults.Ok(UploadResponse.From(upload));
    }

    private static ProblemHttpResult? Refusal(Upload upload, TimeProvider clock)
    {
        if (upload.Status != UploadStatus.Pending) return Conflict($"The upload is {upload.Status}.");
        if (upload.ExpiresAt <= clock.GetUtcNow()) return Conflict("The upload has expired; create a new one.");
        return null;
    }

    private static ValidationProblem PartTooLarge(UploadOptions limits) =>
        ApiResults.Invalid("body", $"a part must be at most {limits.MaxPartBytes} bytes.");

    private static ProblemHttpResult Conflict(string detail) => TypedResults.Problem(statusCode: 409, title: "Conflict", detail: detail);

    /// <summary>The parts of an upload read one after another, as one stream.</summary>
    private sealed class ConcatenatedParts(UploadPartStore store, Guid uploadId, IReadOnlyList<int> numbers, CancellationToken openCancellation) : ReadOnlyForwardStream
    {
        private int next;
        private Stream? current;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (true)
            {
                if (current is null)
                {
                    if (next == numbers.Count) return 0;
                    current = await store.OpenReadAsync(uploadId, numbers[next++], openCancellation);
                }
                var read = await current.ReadAsync(buffer, cancellationToken);
                if (read > 0) return read;
                await current.DisposeAsync();
                current = null;
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

        public override async ValueTask DisposeAsync()
        {
            if (current is not null) await current.DisposeAsync();
            current = null;
            await base.DisposeAsync();
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) current?.Dispose();
            base.Dispose(disposing);
        }
    }
}

internal static class UploadOptionsDefaults
{
    // The request limit sits a little above the part limit, so an oversized part gets the precise 400, not a bare 413.
    public const long MaxPartRequestBytes = (64L << 20) + (1 << 20);
}

/// <summary>Server-side behaviour of the upload contracts (the records live in <c>VlaCloud.Contracts</c>).</summary>
internal static class UploadContractExtensions
{
    extension(UploadResponse)
    {
        internal static UploadResponse From(Upload u) => new(
            u.Id, u.Filename, u.Bytes, u.Sha256, u.Purpose, u.MimeType, u.Embodiment, u.Status, u.Parts.Sum(p => p.SizeBytes),
            [.. u.Parts.OrderBy(p => p.PartNumber).Select(p => new UploadPartResponse(u.Id, p.PartNumber, p.SizeBytes, p.Sha256, p.ReceivedAt))],
            u.ArtifactSha256, u.DatasetId, u.CreatedAt, u.ExpiresAt, u.CompletedAt);
    }
}
