using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Hangfire;
using Hangfire.States;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using StackExchange.Redis;
using Microsoft.Extensions.Options;
using VlaCloud.Api.Acting;
using VlaCloud.Api.Auth;
using VlaCloud.Api.RateLimiting;
using VlaCloud.Registry;
using VlaCloud.Registry.Checkpoints;
using VlaCloud.Datasets;
using VlaCloud.Registry.Entities;
using VlaCloud.Api.Limits;
using VlaCloud.Training;
using VlaCloud.Training.Jobs;
using VlaCloud.Sim;
// Two records of one JSON shape: the contract (shared with the SDK) and the training side's, which validates and
// fills in defaults; VlaCloud.Training does not reference the SDK, so the API maps between them.

namespace VlaCloud.Api.Apis;

/// <summary>
/// <c>/v1/fine_tuning/jobs</c> (OpenAI's shape): create a job that trains a base checkpoint on a ready dataset
/// into the next version of a model, follow its status, events (paged, or live as Server-Sent Events), saved
/// training states and loss curve, and cancel it.
/// </summary>
public static class FineTuningApi
{
    /// <summary>Maps the group.</summary>
    public static IEndpointRouteBuilder MapFineTuningApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/fine_tuning/jobs").WithTags("Fine-tuning").RequireTenantRateLimit().RequireAuthorization(ApiScopes.Training);
        group.MapPost("", CreateAsync).WithName("CreateFineTuningJob")
            .WithSummary("Creates a fine-tuning job: base checkpoint + ready dataset → the next version of a model; queued for a trainer.")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);
        group.MapGet("", ListAsync).WithName("ListFineTuningJobs").WithSummary("Lists the caller's fine-tuning jobs, newest first.");
        group.MapGet("/{id:guid}", GetAsync).WithName("GetFineTuningJob").WithSummary("Gets a job: status, progress, metrics, result.");
        group.MapGet("/{id:guid}/events", EventsAsync).WithName("ListFineTuningJobEvents")
            .WithSummary("Lists a job's events in order, after a sequence number.");
        group.MapGet("/{id:guid}/events/stream", StreamEventsAsync).WithName("StreamFineTuningJobEvents")
            .WithSummary("Streams a job's events as Server-Sent Events (after ?after= or the Last-Event-ID header) until the job ends.")
            .Produces(StatusCodes.Status200OK, contentType: "text/event-stream")
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPost("/{id:guid}/cancel", CancelAsync).WithName("CancelFineTuningJob")
            .WithSummary("Cancels a queued or running job; a running job stops within seconds and registers nothing.");
        group.MapGet("/{id:guid}/checkpoints", CheckpointsAsync).WithName("ListFineTuningJobCheckpoints")
            .WithSummary("Lists the training states a job saved (one per checkpoint interval), newest first, with their metrics.");
        group.MapGet("/{id:guid}/metrics", MetricsAsync).WithName("GetFineTuningJobMetrics")
            .WithSummary("The job's training series as data: per step the losses, learning rates and gradient norm, plus evaluations, saved steps and resume points; CSV (one row per step) with Accept: text/csv.")
            .Produces<JobMetricsResponse>(StatusCodes.Status200OK, "application/json", "text/csv")
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapGet("/{id:guid}/loss_curve", LossCurveAsync).WithName("GetFineTuningJobLossCurve")
            .WithSummary("The job's loss curves as an SVG image, drawn from its metrics: smoothed losses over faint raw values (smoothing in [0, 1), default by run length), the learning rate, and marks for evaluations, saved states and resumes.")
            .Produces<string>(StatusCodes.Status200OK, "image/svg+xml")
            .ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    /// <remarks>
    /// Checks everything a trainer would refuse after the queue wait, then queues the job and answers 201 with it
    /// (<c>queued</c>) and its <c>Location</c>. The trainer fine-tunes <c>base</c> on <c>dataset</c>, saves training
    /// states at intervals (a restarted job resumes from the last), registers the result as the next version of
    /// <c>model</c>, evaluates it in the simulator when asked, and moves the alias <c>promote_to</c> to it when it beats
    /// the alias's current holder. Follow it with
    /// <c>GET …/{id}</c>, its events or their Server-Sent Events stream.
    ///
    /// Errors: 400 for invalid hyperparameters or names, a missing base or dataset, <c>evaluation_episodes</c> outside
    /// 1–1000, a base whose embodiment has another layout than the dataset's without <c>new_head</c>, <c>evaluate</c> on
    /// an embodiment that is not a simulator one, or a point-guided base with <c>vanilla</c> mode or a dataset without
    /// spatial annotations; 404 when the dataset or base is not visible to the caller; 409 when the dataset is not
    /// <c>ready</c>; 413 (<c>storage_quota_exceeded</c>) when the tenant's storage is full; 429
    /// (<c>concurrency_limited</c>) when the tenant already has its limit of jobs queued or running (10 by default).
    /// </remarks>
    private static async Task<Results<Created<FineTuningJobResponse>, ValidationProblem, ProblemHttpResult>> CreateAsync(
        CreateFineTuningJobRequest request, RegistryDbContext db, CheckpointRegistry registry, StorageQuota quota, CurrentTenant tenant,
        IBackgroundJobClient jobs, IOptions<LimitsOptions> limits, TimeProvider clock, CancellationToken cancellationToken)
    {
        var spec = FineTuningJobSpec.Resolve((request.Hyperparameters ?? new FineTuningHyperparameters()).ToRequested(), out var specErrors);
        var options = spec.ToOptions();
        var errors = specErrors.ToDictionary(e => $"hyperparameters.{e.Key}", e => e.Value);
        if (!Names.IsValidModelName(request.Model)) errors["model"] = ["model must be 1-100 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit."];
        if (string.IsNullOrWhiteSpace(request.Base)) errors["base"] = ["base (a checkpoint id, model@vN or model@alias) is required."];
        if (request.Dataset == Guid.Empty) errors["dataset"] = ["dataset (a dataset id) is required."];
        if (request.PromoteTo is not null && !Names.IsValidAlias(request.PromoteTo)) errors["promote_to"] = ["promote_to must be a valid alias name."];
        if (request.EvaluationEpisodes is < 1 or > CreateFineTuningJobRequest.MaxEvaluationEpisodes)
            errors["evaluation_episodes"] = [$"evaluation_episodes must be between 1 and {CreateFineTuningJobRequest.MaxEvaluationEpisodes}."];
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);

        var dataset = await db.Datasets.AsNoTracking().FirstOrDefaultAsync(d => d.Id == request.Dataset, cancellationToken);
        if (dataset is null) return ApiResults.NotFound($"Dataset {request.Dataset}");
        if (dataset.Status != DatasetStatus.Ready)
            return TypedResults.Problem(statusCode: 409, title: "Conflict", detail: $"Dataset {dataset.Id} is {dataset.Status}; only a ready dataset can be trained on.");
        var embodiment = await db.Embodiments.AsNoTracking().SingleAsync(e => e.Id == dataset.EmbodimentId, cancellationToken);
        Checkpoint baseCheckpoint;
        try
        {
            baseCheckpoint = await registry.ResolveAsync(request.Base, embodiment.Id.ToString(), cancellationToken);
        }
        catch (RegistryException e)
        {
            return ApiResults.Problem(e);
        }
        // A base trained for another layout (action or state size, cameras) is not fine-tuned by a dataset of this one:
        // its action expert would be retargeted without a word. Only an explicit new_head asks for that.
        if (baseCheckpoint.EmbodimentId != embodiment.Id
            && await db.Embodiments.AsNoTracking().FirstOrDefaultAsync(e => e.Id == baseCheckpoint.EmbodimentId, cancellationToken) is { } baseEmbodiment
            && FineTuneJob.LayoutDifference(baseEmbodiment, embodiment) is { } difference && !request.NewHead)
            return ApiResults.Invalid("base",
                $"base {baseCheckpoint.ModelName}@v{baseCheckpoint.Version} was trained for embodiment '{baseEmbodiment.Name}', whose layout differs from the dataset's '{embodiment.Name}' ({difference}); "
                + "set new_head: true to train a new action head for it, or pick a base of this layout.");
        if (request.Evaluate && SimEnvironments.Find(embodiment.Simulator) is null)
            return ApiResults.Invalid("evaluate", $"evaluation runs in a built-in simulator; embodiment '{embodiment.Name}' names none (its simulator is null).");
        // A point-guided base's action expert reads System 2's points, and training teacher-forces them from the
        // dataset's labels: what the trainer would refuse after the queue wait is refused here, before anything is stored.
        if (IsPointGuided(baseCheckpoint))
        {
            var name = $"{baseCheckpoint.ModelName}@v{baseCheckpoint.Version}";
            if (options.Mode == TrainingMode.Vanilla)
                return ApiResults.Invalid("hyperparameters.mode",
                    $"base {name} is point-guided: its action expert reads System 2's point answers, which vanilla mode does not train; use st4vla.");
            if (SpatialAnnotations(dataset) == 0)
                return ApiResults.Invalid("dataset",
                    $"base {name} is point-guided: it trains on demonstrations whose frames carry spatial annotations (the target's point, {LeRobotDataset.SpatialAnnotationsFile}); dataset {dataset.Id} has none.");
        }

        // Per tenant: a bounded share of the queue, and no training into a full storage (a job stores its training
        // states and its result).
        var active = await db.FineTuningJobs.CountAsync(j => j.Status == FineTuningJobStatus.Queued || j.Status == FineTuningJobStatus.Running, cancellationToken);
        if (active >= limits.Value.MaxActiveJobsPerTenant)
            return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many fine-tuning jobs", type: ProblemTypes.ConcurrencyLimited,
                detail: $"The tenant has {active} jobs queued or running, its limit; create this one when one of them ends (or cancel one).");
        var storage = await quota.GetAsync(tenant.TenantId!.Value, tenant.Limits, cancellationToken);
        if (storage.RemainingBytes == 0) return ApiResults.StorageFull(storage, baseCheckpoint.SizeBytes, "A fine-tuning job's result");

        var job = new FineTuningJob
        {
            TenantId = tenant.TenantId, Model = request.Model, BaseCheckpointId = baseCheckpoint.Id, DatasetId = dataset.Id, EmbodimentId = embodiment.Id,
            Hyperparameters = spec.ToJson(), Evaluate = request.Evaluate, PromoteTo = request.PromoteTo,
            EvaluationEpisodes = request.EvaluationEpisodes ?? CreateFineTuningJobRequest.DefaultEvaluationEpisodes,
            TotalSteps = options.Steps, CreatedByKeyId = tenant.KeyId, CreatedAt = clock.GetUtcNow(),
        };
        db.FineTuningJobs.Add(job);
        db.JobEvents.Add(new JobEvent { JobId = job.Id, TenantId = job.TenantId, Level = "info", Type = "message", Message = "Job created.", CreatedAt = job.CreatedAt });
        await db.SaveChangesAsync(cancellationToken);
        // Hangfire gets the id only; everything else is read from the job row when it runs.
        job.BackgroundJobId = jobs.Create<FineTuneJob>(run => run.RunAsync(job.Id, CancellationToken.None), new EnqueuedState(HangfireSetup.FineTuneQueue));
        await db.FineTuningJobs.Where(j => j.Id == job.Id).ExecuteUpdateAsync(s => s.SetProperty(j => j.BackgroundJobId, job.BackgroundJobId), cancellationToken);
        return TypedResults.Created($"/v1/fine_tuning/jobs/{job.Id}", FineTuningJobResponse.From(job));
    }

    private static bool IsPointGuided(Checkpoint checkpoint)
    {
        using var config = JsonDocument.Parse(checkpoint.Config);
        return config.RootElement.ValueKind == JsonValueKind.Object
            && config.RootElement.TryGetProperty("point_guidance", out var guided) && guided.ValueKind == JsonValueKind.True;
    }

    private static int SpatialAnnotations(Dataset dataset)
    {
        if (dataset.Statistics is null) return 0;
        using var statistics = JsonDocument.Parse(dataset.Statistics);
        return statistics.RootElement.TryGetProperty("spatial_annotations", out var count) && count.TryGetInt32(out var n) ? n : 0;
    }

    /// <remarks>
    /// The caller's tenant's jobs in every state, newest first, paged with <c>after</c> and <c>limit</c> (400 for a
    /// limit outside 1–100).
    /// </remarks>
    private static async Task<Results<Ok<ListPage<FineTuningJobResponse>>, ValidationProblem>> ListAsync(
        RegistryDbContext db, Guid? after, int? limit, CancellationToken cancellationToken)
    {
        if (ApiResults.CheckLimit(limit, out var take) is { } invalid) return invalid;
        var query = db.FineTuningJobs.AsNoTracking();
        if (after is { } cursor) query = query.Where(j => j.Id < cursor);
        var rows = await query.OrderByDescending(j => j.Id).Take(take + 1).ToListAsync(cancellationToken);
        return TypedResults.Ok(ApiResults.Page(rows, take, j => j.Id, FineTuningJobResponse.From));
    }

    /// <remarks>
    /// A job of the caller's tenant: status, step and progress, the latest metrics, evaluation, the last saved and
    /// resumed steps, the result checkpoint and whether it was promoted, or the error. 404 for any other id.
    /// </remarks>
    /// <param name="id">The job's id.</param>
    private static async Task<Results<Ok<FineTuningJobResponse>, ProblemHttpResult>> GetAsync(Guid id, RegistryDbContext db, CancellationToken cancellationToken) =>
        await db.FineTuningJobs.AsNoTracking().FirstOrDefaultAsync(j => j.Id == id, cancellationToken) is { } job
            ? TypedResults.Ok(FineTuningJobResponse.From(job))
            : ApiResults.NotFound($"Fine-tuning job {id}");

    /// <remarks>
    /// The job's messages and metrics events, oldest first; each event's <c>id</c> is its sequence number, and a page's
    /// <c>last_id</c> is the <c>after</c> of the next one. 400 for a limit outside 1–100; 404 for a job the caller cannot
    /// see.
    /// </remarks>
    /// <param name="id">The job's id.</param>
    /// <param name="after">Sequence number: only events after it (0 or omitted: from the first).</param>
    private static async Task<Results<Ok<ListPage<JobEventResponse>>, ValidationProblem, ProblemHttpResult>> EventsAsync(
        Guid id, long? after, int? limit, RegistryDbContext db, CancellationToken cancellationToken)
    {
        if (ApiResults.CheckLimit(limit, out var take) is { } invalid) return invalid;
        if (!await db.FineTuningJobs.AnyAsync(j => j.Id == id, cancellationToken)) return ApiResults.NotFound($"Fine-tuning job {id}");
        var rows = await EventsAfterAsync(db, id, after ?? 0, take + 1, cancellationToken);
        var page = rows.Take(take).ToList();
        return TypedResults.Ok(new ListPage<JobEventResponse>([.. page.Select(JobEventResponse.From)],
            page.Count > 0 ? page[0].Id.ToString() : null, page.Count > 0 ? page[^1].Id.ToString() : null, rows.Count > take));
    }

    /// <summary>How long a client waits before reconnecting when the stream drops (sent as the SSE <c>retry</c> field).</summary>
    internal static readonly TimeSpan StreamReconnectionInterval = TimeSpan.FromSeconds(2);

    /// <remarks>
    /// A <c>text/event-stream</c> of the job's events as they are written: each SSE event is named by the event's
    /// <c>type</c> (<c>message</c> or <c>metrics</c>), carries it as JSON and has its sequence number as <c>id</c>, with
    /// <c>retry: 2000</c>, so an EventSource that reconnects resumes after the last event it received. When the job ends,
    /// a <c>done</c> event carries its final status and the stream closes; if the caller's key is revoked or expires
    /// meanwhile, a <c>revoked</c> event says so within a second and the stream closes. 404 for a job the caller cannot
    /// see.
    /// </remarks>
    /// <param name="id">The job's id.</param>
    /// <param name="after">Sequence number: only events after it; wins over Last-Event-ID.</param>
    /// <param name="lastEventId">The id of the last event a reconnecting EventSource received (its sequence number); the stream resumes after it.</param>
    private static async Task<IResult> StreamEventsAsync(
        Guid id, long? after, [FromHeader(Name = "Last-Event-ID")] string? lastEventId, HttpContext context, RegistryDbContext db,
        IConnectionMultiplexer redis, RedisKeyspace keyspace, LiveSessions sessions, CurrentTenant tenant, CancellationToken requestAborted)
    {
        if (!await db.FineTuningJobs.AnyAsync(j => j.Id == id, requestAborted)) return ApiResults.NotFound($"Fine-tuning job {id}");
        // A reconnecting EventSource sends the last id it saw; an explicit ?after= wins over it.
        var from = after ?? (long.TryParse(lastEventId, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seen) ? seen : 0);
        // The events are written as the REST endpoints write them (the host's JSON options), so a client parses both alike.
        var json = context.RequestServices.GetRequiredService<IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value.SerializerOptions;
        context.Response.Headers["X-Accel-Buffering"] = "no";
        return TypedResults.ServerSentEvents(JobEventItemsAsync(id, from, db, redis, keyspace, sessions, tenant, json, requestAborted));
    }

    /// <summary>
    /// The job's events after <paramref name="from"/> as SSE items (<c>id</c> = the event's sequence number), then
    /// <c>done</c> with the final status; or <c>revoked</c> when the caller's key is revoked or expires meanwhile.
    /// </summary>
    private static async IAsyncEnumerable<SseItem<string>> JobEventItemsAsync(
        Guid id, long from, RegistryDbContext db, IConnectionMultiplexer redis, RedisKeyspace keyspace, LiveSessions sessions,
        CurrentTenant tenant, JsonSerializerOptions json, [EnumeratorCancellation] CancellationToken requestAborted)
    {
        // The stream ends with its key: a revocation ends it within a second with a final "revoked" event.
        using var live = sessions.Open(tenant.Identity!, null, _ => Task.CompletedTask);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(requestAborted, live.Ended);
        var cancellationToken = linked.Token;

        // Redis only says "something new"; the events themselves come from Postgres in order, so a missed or
        // duplicated message never reorders or loses one. A slow poll covers a Redis outage.
        var nudge = new SemaphoreSlim(0);
        var channel = JobEventSink.Channel(keyspace, id);
        ChannelMessageQueue? queue = null;
        try
        {
            queue = await redis.GetSubscriber().SubscribeAsync(channel);
            queue.OnMessage(_ => nudge.Release());
        }
        catch (RedisException)
        {
        }
        try
        {
            var last = from;
            var stopped = false;
            while (!stopped)
            {
                string status;
                List<JobEvent> events;
                try
                {
                    status = await db.FineTuningJobs.AsNoTracking().Where(j => j.Id == id).Select(j => j.Status).SingleAsync(cancellationToken);
                    events = await EventsAfterAsync(db, id, last, 500, cancellationToken);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    break;
                }
                foreach (var e in events)
                {
                    yield return new SseItem<string>(JsonSerializer.Serialize(JobEventResponse.From(e), json), e.Type)
                    {
                        EventId = e.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
                        ReconnectionInterval = StreamReconnectionInterval,
                    };
                    last = e.Id;
                }
                if (events.Count == 500) continue;
                if (FineTuningJobStatus.IsFinal(status))
                {
                    yield return new SseItem<string>(JsonSerializer.Serialize(new { status }, json), "done");
                    yield break;
                }
                try
                {
                    await nudge.WaitAsync(TimeSpan.FromSeconds(2), cancellationToken);
                    while (nudge.CurrentCount > 0) await nudge.WaitAsync(cancellationToken);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    stopped = true;
                }
            }
            // Ended by the key, not by the client: say why before closing.
            if (live.EndedBecause is { } ended && !requestAborted.IsCancellationRequested)
                yield return new SseItem<string>(JsonSerializer.Serialize(new { code = ended.CloseCode, detail = ended.Reason }, json), "revoked");
        }
        finally
        {
            if (queue is not null) await queue.UnsubscribeAsync();
        }
    }

    /// <remarks>
    /// A queued job is cancelled at once (status <c>cancelled</c>); a running one is asked to stop and its trainer ends it
    /// within seconds without registering a result (the answer shows <c>cancel_requested_at</c> until then). Either way
    /// the job's events record it. 404 for a job the caller cannot see; 409 when the job has already ended.
    /// </remarks>
    /// <param name="id">The job's id.</param>
    private static async Task<Results<Ok<FineTuningJobResponse>, ProblemHttpResult>> CancelAsync(
        Guid id, RegistryDbContext db, IBackgroundJobClient jobs, TimeProvider clock, CancellationToken cancellationToken)
    {
        var job = await db.FineTuningJobs.AsNoTracking().FirstOrDefaultAsync(j => j.Id == id, cancellationToken);
        if (job is null) return ApiResults.NotFound($"Fine-tuning job {id}");
        if (FineTuningJobStatus.IsFinal(job.Status))
            return TypedResults.Problem(statusCode: 409, title: "Conflict", detail: $"The job is already {job.Status}.");
        var now = clock.GetUtcNow();
        await db.FineTuningJobs.Where(j => j.Id == id && j.CancelRequestedAt == null).ExecuteUpdateAsync(s => s.SetProperty(j => j.CancelRequestedAt, now), cancellationToken);
        // A queued job is cancelled at once; a running one by its trainer, which polls for the request.
        var cancelledNow = await db.FineTuningJobs.Where(j => j.Id == id && j.Status == FineTuningJobStatus.Queued)
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.Status, FineTuningJobStatus.Cancelled).SetProperty(j => j.FinishedAt, now), cancellationToken);
        if (cancelledNow > 0)
        {
            db.JobEvents.Add(new JobEvent { JobId = id, TenantId = job.TenantId, Level = "info", Type = "message", Message = "Job cancelled before it started.", CreatedAt = now });
            await db.SaveChangesAsync(cancellationToken);
            if (job.BackgroundJobId is { } backgroundId) jobs.Delete(backgroundId);
        }
        else
        {
            db.JobEvents.Add(new JobEvent { JobId = id, TenantId = job.TenantId, Level = "info", Type = "message", Message = "Cancellation requested.", CreatedAt = now });
            await db.SaveChangesAsync(cancellationToken);
        }
        return TypedResults.Ok(FineTuningJobResponse.From(await db.FineTuningJobs.AsNoTracking().SingleAsync(j => j.Id == id, cancellationToken)));
    }

    /// <remarks>
    /// The training states the job saved (step, metrics, artifact SHA-256 and size), newest first, paged with
    /// <c>after</c> and <c>limit</c>. These are resume points, not registered checkpoints: the job registers only its
    /// result. 400 for a limit outside 1–100; 404 for a job the caller cannot see.
    /// </remarks>
    /// <param name="id">The job's id.</param>
    private static async Task<Results<Ok<ListPage<JobCheckpointResponse>>, ValidationProblem, ProblemHttpResult>> CheckpointsAsync(
        Guid id, Guid? after, int? limit, RegistryDbContext db, CancellationToken cancellationToken)
    {
        if (ApiResults.CheckLimit(limit, out var take) is { } invalid) return invalid;
        if (!await db.FineTuningJobs.AnyAsync(j => j.Id == id, cancellationToken)) return ApiResults.NotFound($"Fine-tuning job {id}");
        var query = db.JobCheckpoints.AsNoTracking().Where(c => c.JobId == id);
        if (after is { } cursor) query = query.Where(c => c.Id < cursor);
        var rows = await query.OrderByDescending(c => c.Id).Take(take + 1).ToListAsync(cancellationToken);
        return TypedResults.Ok(ApiResults.Page(rows, take, c => c.Id, JobCheckpointResponse.From));
    }

    /// <remarks>
    /// The series read from the job's events so far (it grows while the job runs): per logged step the losses, learning
    /// rates and gradient norm; the evaluations; the steps whose training state was saved; the steps it resumed from.
    /// JSON by default; with <c>Accept: text/csv</c> one CSV row per step, as an attachment. 404 for a job the caller
    /// cannot see.
    /// </remarks>
    /// <param name="id">The job's id.</param>
    private static async Task<IResult> MetricsAsync(Guid id, HttpContext context, RegistryDbContext db, CancellationToken cancellationToken)
    {
        var job = await db.FineTuningJobs.AsNoTracking().FirstOrDefaultAsync(j => j.Id == id, cancellationToken);
        if (job is null) return ApiResults.NotFound($"Fine-tuning job {id}");
        var metrics = await ReadMetricsAsync(db, id, cancellationToken);
        // CSV only when asked for by name: a browser's or SDK's */* keeps getting JSON.
        var accept = context.Request.GetTypedHeaders().Accept;
        if (accept.Any(a => a.MediaType.Equals("text/csv", StringComparison.OrdinalIgnoreCase)))
        {
            context.Response.Headers.ContentDisposition = $"attachment; filename=job-{id}-metrics.csv";
            return TypedResults.Text(metrics.ToCsv(), "text/csv; charset=utf-8");
        }
        return TypedResults.Ok(new JobMetricsResponse(id, job.TotalSteps,
            [.. metrics.Points.Select(p => new JobMetricsStep(p.Step, p.Loss, p.ActionLoss, p.SpatialLoss, p.LearningRate, p.VlmLearningRate, p.GradientNorm))],
            [.. metrics.Evaluations.Select(e => new JobMetricsEvaluation(e.Step, e.Metrics))], metrics.Saves, metrics.Resumes));
    }

    /// <remarks>
    /// An <c>image/svg+xml</c> chart of the same series as <c>…/metrics</c>, for a browser or a notebook. 400 for a
    /// <c>smoothing</c> outside [0, 1); 404 for a job the caller cannot see.
    /// </remarks>
    /// <param name="id">The job's id.</param>
    /// <param name="smoothing">Exponential moving-average weight in [0, 1) drawn over the raw losses: 0 draws the raw values only; omitted, a weight that averages about the last 1 % of the run (raw for fewer than 20 points).</param>
    private static async Task<Results<ContentHttpResult, ProblemHttpResult, ValidationProblem>> LossCurveAsync(
        Guid id, double? smoothing, RegistryDbContext db, CancellationToken cancellationToken)
    {
        if (smoothing is { } w && !(w >= 0 && w < 1)) return ApiResults.Invalid("smoothing", "smoothing must be in [0, 1) (0 draws the raw values).");
        var job = await db.FineTuningJobs.AsNoTracking().FirstOrDefaultAsync(j => j.Id == id, cancellationToken);
        if (job is null) return ApiResults.NotFound($"Fine-tuning job {id}");
        var metrics = await ReadMetricsAsync(db, id, cancellationToken);
        return TypedResults.Content(LossCurve.Svg($"{job.Model}: job {job.Id}", metrics, smoothing), "image/svg+xml");
    }

    /// <summary>The job's series from its events: metrics events, and the messages that carry saves, resumes and evaluations.</summary>
    private static async Task<JobMetrics> ReadMetricsAsync(RegistryDbContext db, Guid id, CancellationToken cancellationToken)
    {
        var events = await db.JobEvents.AsNoTracking().Where(e => e.JobId == id && e.Data != null).OrderBy(e => e.Id)
            .Select(e => new { e.Type, e.Message, e.Data }).ToListAsync(cancellationToken);
        return JobMetrics.FromEvents(events.Select(e => (e.Type, e.Message, e.Data)));
    }

    private static Task<List<JobEvent>> EventsAfterAsync(RegistryDbContext db, Guid id, long after, int take, CancellationToken cancellationToken) =>
        db.JobEvents.AsNoTracking().Where(e => e.JobId == id && e.Id > after).OrderBy(e => e.Id).Take(take).ToListAsync(cancellationToken);
}

/// <summary>Server-side behaviour of the fine-tuning contracts (the records live in <c>VlaCloud.Contracts</c>).</summary>
internal static class FineTuningContractExtensions
{
    extension(FineTuningJobResponse)
    {
        internal static FineTuningJobResponse From(FineTuningJob j) => new(
            j.Id, j.Model, j.Status, j.BaseCheckpointId, j.DatasetId, j.EmbodimentId, FineTuningHyperparameters.From(FineTuningJobSpec.FromJson(j.Hyperparameters)),
            j.Evaluate, j.PromoteTo, j.Step, j.TotalSteps, j.TotalSteps == 0 ? 0 : Math.Round((double)j.Step / j.TotalSteps, 4), Json.Parse(j.Metrics),
            Json.Parse(j.Evaluation ?? "{}"), j.Error, j.LastSavedStep, j.ResumedFromStep, j.Attempts, j.ResultCheckpointId, j.Promoted, j.CancelRequestedAt, j.CreatedAt, j.StartedAt,
            j.FinishedAt, j.EvaluationEpisodes);
    }

    extension(FineTuningHyperparameters h)
    {
        /// <summary>The request's options as Training takes them; the public names stay here, out of the stored form.</summary>
        internal RequestedTrainingOptions ToRequested() => new()
        {
            Steps = h.Steps, BatchSize = h.BatchSize, LearningRate = h.LearningRate, WarmupSteps = h.WarmupSteps, SpatialRatio = h.SpatialRatio,
            GradientDecay = h.GradientDecay, SpatialPrompt = h.SpatialPrompt, Seed = h.Seed, CheckpointInterval = h.CheckpointInterval, Mode = h.Mode,
        };
    }

    extension(FineTuningHyperparameters)
    {
        /// <summary>What a job trains with, as the REST record shows it.</summary>
        internal static FineTuningHyperparameters From(FineTuningJobSpec s) => new()
        {
            Steps = s.Steps, BatchSize = s.BatchSize, LearningRate = s.LearningRate, WarmupSteps = s.WarmupSteps, SpatialRatio = s.SpatialRatio,
            GradientDecay = s.GradientDecay, SpatialPrompt = s.SpatialPrompt, Seed = s.Seed, CheckpointInterval = s.CheckpointInterval,
            Mode = s.Mode == TrainingMode.Vanilla ? "vanilla" : "st4vla",
        };
    }

    extension(JobEventResponse)
    {
        internal static JobEventResponse From(JobEvent e) => new(e.Id, e.JobId, e.Level, e.Type, e.Message, Json.Parse(e.Data ?? "{}"), e.CreatedAt);
    }

    extension(JobCheckpointResponse)
    {
        internal static JobCheckpointResponse From(JobCheckpoint c) => new(c.Id, c.JobId, c.Step, Json.Parse(c.Metrics), c.ArtifactSha256, c.SizeBytes, c.CreatedAt);
    }
}

internal static class Json
{
    public static JsonElement Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }
}
