using System.Formats.Tar;
using System.Threading.Channels;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using StackExchange.Redis;
using VlaCloud.Policy;
using VlaCloud.Registry;
using VlaCloud.Registry.Artifacts;
using VlaCloud.Registry.Checkpoints;
using VlaCloud.Registry.Entities;
using VlaCloud.Telemetry;
using VlaCloud.Sim;

namespace VlaCloud.Training.Jobs;

/// <summary>
/// Runs one fine-tuning job (a Hangfire job that takes the job id only) for the job's tenant: trains the base
/// checkpoint on the dataset with <see cref="CoTrainer"/>, copies every interval's resumable training state to the
/// artifact store (so a retry on another trainer resumes from it), optionally evaluates, registers the result as
/// the model's next version with lineage (exactly once per job) and promotes it when it beats the alias holder.
/// </summary>
public sealed class FineTuneJob(
    RegistryDbContext db,
    DbContextOptions<RegistryDbContext> dbOptions,
    IJobTenant tenant,
    CheckpointRegistry registry,
    AliasService aliases,
    IArtifactStore store,
    RedisKeyspace keyspace,
    IConnectionMultiplexer redis,
    IFineTuneQueue queue,
    IOptions<FineTuningJobOptions> options,
    TimeProvider clock,
    ILogger<FineTuneJob> logger)
{
    private FineTuningJobOptions Settings => options.Value;
    private readonly TrainingStateStore trainingStates = new(store, dbOptions, clock);
    private readonly ResultRegistrar registrar = new(db, dbOptions, registry, store, clock);
    private readonly AliasPromotion promotion = new(db, aliases, store, options.Value);

    /// <summary>
    /// Runs job <paramref name="jobId"/>. Returns normally when the job reached a final status (failures are recorded
    /// on the job, not thrown, so Hangfire does not retry them); throws when <paramref name="cancellationToken"/> (the
    /// trainer shutting down) stops it, so Hangfire runs it again and it resumes.
    /// </summary>
    public async Task RunAsync(Guid jobId, CancellationToken cancellationToken)
    {
        var owner = await db.FineTuningJobs.IgnoreQueryFilters().Where(j => j.Id == jobId).Select(j => j.TenantId).SingleOrDefaultAsync(cancellationToken);
        if (owner is not { } tenantId) return;
        tenant.ActFor(tenantId);
        var job = await db.FineTuningJobs.AsNoTracking().SingleAsync(j => j.Id == jobId, cancellationToken);
        if (FineTuningJobStatus.IsFinal(job.Status)) return;

        await using var sink = new JobEventSink(dbOptions, tenantId, jobId, redis, keyspace, Settings.PollInterval, Settings.EventFlushInterval, Settings.EventFlushSteps);
        if (job.CancelRequestedAt is not null)
        {
            await FinishAsync(job, FineTuningJobStatus.Cancelled, sink, "Job cancelled before it started.");
            return;
        }
        if (job.Attempts >= Settings.MaxAttempts)
        {
            // Every earlier run ended without finishing: the trainer died under it (killed for memory, say). Running it
            // again would only take the queue from every other job, again.
            var reason = $"The job was started {job.Attempts} times and no run finished (the trainer stopped during each, e.g. killed for " +
                         $"using too much memory); it is not run again (VlaCloud:FineTuning:MaxAttempts is {Settings.MaxAttempts}).";
            await db.FineTuningJobs.Where(j => j.Id == jobId).ExecuteUpdateAsync(s => s.SetProperty(j => j.Error, reason), CancellationToken.None);
            await FinishAsync(job, FineTuningJobStatus.Failed, sink, $"Job failed: {reason}", "error");
            VlaCloudTelemetry.JobsFinished.Add(1, new(VlaCloudTelemetry.Tags.JobKind, "finetune"), new(VlaCloudTelemetry.Tags.Outcome, "failed"));
            return;
        }
        var attempt = job.Attempts + 1;
        var start = await TryStartAsync(job, attempt, cancellationToken);
        if (start == Start.Gone) return;
        if (start == Start.OtherTenantsFirst)
        {
            // Round-robin between tenants: another tenant has waited longer since its last start; its job is taken first.
            queue.Defer(job, Settings.RoundRobinDelay);
            return;
        }
        if (start == Start.RunningElsewhere)
        {
            // Fetched again while a live trainer still runs it (its heartbeat is fresh): look again once a dead one's would be stale.
            queue.Defer(job, Settings.HeartbeatTimeout);
            return;
        }
        if (start == Start.AtLimit)
        {
            // The tenant already runs as many jobs as it may: this one waits its turn behind the other tenants' jobs.
            queue.Defer(job, Settings.DeferDelay);
            if (!await db.JobEvents.AnyAsync(e => e.JobId == jobId && e.Message.StartsWith(WaitingMessage), cancellationToken))
                sink.Message($"{WaitingMessage}: the tenant has {Settings.MaxRunningJobsPerTenant} running job(s), its limit; it starts when one ends.");
            return;
        }
        sink.StartHeartbeat(TrainerIdentity.WorkerId, Settings.HeartbeatInterval);
        sink.Message(attempt == 1 ? "Job started." : $"Job restarted (attempt {attempt}).");

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, sink.CancelRequested, sink.Lost);
        var work = Path.Combine(Settings.WorkPath, "jobs", jobId.ToString("N"));
        string outcome = "failed";
        try
        {
            var result = await db.Checkpoints.AsNoTracking().FirstOrDefaultAsync(c => c.FineTuningJobId == jobId, cancellationToken);
            TrainingData? data = null;
            PolicyScore? score = null;
            if (result is not null)
            {
                sink.Message($"The result was registered by an earlier attempt as {result.ModelName}@v{result.Version}.");
            }
            else
            {
                (result, data, score) = await TrainAndRegisterAsync(job, work, sink, linked.Token);
            }
            var promoted = job.PromoteTo is null ? (bool?)null : await promotion.PromoteAsync(job, result, data, score, sink, cancellationToken);
            await db.FineTuningJobs.Where(j => j.Id == jobId).ExecuteUpdateAsync(s => s
                .SetProperty(j => j.ResultCheckpointId, result.Id)
                .SetProperty(j => j.Promoted, promoted), CancellationToken.None);
            await FinishAsync(job, FineTuningJobStatus.Succeeded, sink, $"Job succeeded: registered {result.ModelName}@v{result.Version} ({result.Id}).");
            outcome = "succeeded";
        }
        catch (OperationCanceledException) when (sink.CancelRequested.IsCancellationRequested)
        {
            await FinishAsync(job, FineTuningJobStatus.Cancelled, sink, "Job cancelled; nothing was registered.");
            outcome = "cancelled";
        }
        catch (OperationCanceledException) when (sink.Lost.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            // This trainer's heartbeat went stale (a long stall) and another trainer took the job over: it is that one's now.
            sink.Message("Another trainer took the job over; this run stops.", "warn");
            outcome = "taken_over";
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // A trainer that stops in order (a deploy, a scale-down) is no fault of the job's: that run does not count
            // against MaxAttempts, only runs whose trainer died do.
            // Its heartbeat ends without going stale: Hangfire puts the job back itself, no other trainer needs to release it.
            sink.StopHeartbeat();
            await db.FineTuningJobs.Where(j => j.Id == jobId && j.WorkerId == TrainerIdentity.WorkerId)
                .ExecuteUpdateAsync(s => s.SetProperty(j => j.WorkerId, (string?)null).SetProperty(j => j.HeartbeatAt, (DateTimeOffset?)null), CancellationToken.None);
            await db.FineTuningJobs.Where(j => j.Id == jobId && j.Attempts > 0)
                .ExecuteUpdateAsync(s => s.SetProperty(j => j.Attempts, j => j.Attempts - 1), CancellationToken.None);
            sink.Message("The trainer is stopping; the job will resume from its last saved step.", "warn");
            outcome = "interrupted";
            throw;
        }
        catch (Exception e)
        {
            logger.LogError(e, "Fine-tuning job {JobId} failed", jobId);
            await db.FineTuningJobs.Where(j => j.Id == jobId).ExecuteUpdateAsync(s => s.SetProperty(j => j.Error, Truncate(e.Message)), CancellationToken.None);
            await FinishAsync(job, FineTuningJobStatus.Failed, sink, $"Job failed: {e.Message}", "error");
        }
        finally
        {
            VlaCloudTelemetry.JobsFinished.Add(1, new(VlaCloudTelemetry.Tags.JobKind, "finetune"), new(VlaCloudTelemetry.Tags.Outcome, outcome));
            TryDelete(work);
        }
    }

    private async Task<(Checkpoint Result, TrainingData Data, PolicyScore? Score)> TrainAndRegisterAsync(
        FineTuningJob job, string work, JobEventSink sink, CancellationToken cancellationToken)
    {
        var embodiment = await db.Embodiments.AsNoTracking().SingleAsync(e => e.Id == job.EmbodimentId, cancellationToken);
        var dataset = await db.Datasets.AsNoTracking().SingleAsync(d => d.Id == job.DatasetId, cancellationToken);
        var baseCheckpoint = await db.Checkpoints.AsNoTracking().SingleAsync(c => c.Id == job.BaseCheckpointId, cancellationToken);
        var trainingOptions = FineTuningJobSpec.FromJson(job.Hyperparameters).ToOptions();

        var folder = await DatasetFiles.EnsureExtractedAsync(store, dataset.ArtifactSha256, Settings, cancellationToken);
        var data = await TrainingData.LoadAsync(folder, [], DataOptionsFor(embodiment), cancellationToken);
        sink.Message($"Loaded {data.Episodes.Count} episodes ({data.Frames} frames, {data.Spatial.Count} spatial records).");

        // Each attempt starts from a clean folder holding only the state the job row points at: what this
        // process may have left from an earlier attempt is not trusted.
        TryDelete(work);
        var states = Path.Combine(work, "states");
        Directory.CreateDirectory(states);
        var resumeStep = 0;
        if (job.ResumeArtifactSha256 is { } stateSha && job.LastSavedStep > 0)
        {
            await trainingStates.RestoreAsync(stateSha, Path.Combine(states, $"step-{job.LastSavedStep:D8}"), cancellationToken);
            resumeStep = job.LastSavedStep;
            await db.FineTuningJobs.Where(j => j.Id == job.Id).ExecuteUpdateAsync(s => s.SetProperty(j => j.ResumedFromStep, resumeStep), cancellationToken);
            sink.Message($"Resuming from step {resumeStep}.", data: new { resumed_from_step = resumeStep });
        }

        var loaded = await JobArtifacts.LoadPolicyAsync(store, baseCheckpoint, Settings.Device, cancellationToken);
        NewHead? newHead;
        try
        {
            // The API takes a base of another layout only with new_head: its action head is rebuilt for this embodiment.
            newHead = await NewHeadAsync(loaded, baseCheckpoint, embodiment, trainingOptions.Seed, sink, cancellationToken);
        }
        catch
        {
            loaded.Dispose();
            throw;
        }
        if (newHead is not null) loaded.Dispose(); // only one model of a 3B base is held at a time
        using var initial = newHead?.Policy ?? loaded;
        var uploads = Channel.CreateUnbounded<(int Step, string Tar, TrainingProgress Metrics)>();
        var uploader = Task.Run(() => trainingStates.UploadAsync(job, uploads.Reader, sink, cancellationToken), CancellationToken.None);
        var reporter = new TrainingReporter(sink, states, work, trainingOptions.CheckpointInterval, resumeStep, uploads.Writer);

        CoTrainingResult run;
        try
        {
            // The loop is synchronous and long: it gets a thread of its own, not one of the pool's.
            run = await Task.Factory.StartNew(
                () => CoTrainer.Train(initial, data, trainingOptions, states, reporter, cancellationToken),
                cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        finally
        {
            uploads.Writer.TryComplete();
            await uploader;
        }
        using var policy = run.Policy;

        PolicyScore? score = null;
        if (job.Evaluate || job.PromoteTo is not null)
        {
            // A promotion is decided by closed-loop success wherever the simulator can run the embodiment, asked for or not.
            var inSimulator = SimEnvironments.Find(embodiment.Simulator) is not null;
            var episodes = Settings.EvaluationEpisodesOf(job);
            sink.Message(inSimulator
                    ? $"Evaluating the result on {episodes} simulator episodes ({SimSplits.Seen.Name} split, seeds {SimSplits.Seen.SeedOf(0)}–{SimSplits.Seen.SeedOf(episodes - 1)})."
                    : "Evaluating the result (action error on demonstrations; the embodiment is not a simulator one).",
                data: new { evaluation_episodes = inSimulator ? episodes : 0, split = inSimulator ? SimSplits.Seen.Name : null, seed_base = inSimulator ? SimSplits.DevelopmentSeedBase : (int?)null });
            sink.FlushSoon(); // the loop's last steps are written before the evaluation runs
            score = await Task.Factory.StartNew(() => PolicyEvaluation.Score(policy, data, inSimulator,
                episodes, Settings.EvaluationInferenceSteps, cancellationToken), cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            sink.Message($"{JobMetrics.EvaluationPrefix} success rate {(score.SuccessRate is { } r ? $"{r:P0} ({score.Successes}/{score.Episodes} episodes)" : "n/a")}, action MSE {score.ActionMse:G4}.", data: score.ToMetrics());
            sink.FlushSoon();
        }

        var metrics = System.Text.Json.JsonSerializer.Serialize(new
        {
            train = run.Final is { } f ? new { steps = f.Step, loss = f.Loss, action_loss = f.ActionLoss, spatial_loss = f.SpatialLoss } : null,
            evaluation = score?.ToMetrics(),
            new_head = newHead is null ? null : new { reinitialised = newHead.Reinitialised, copied = newHead.Copied },
        });
        if (job.Evaluate || job.PromoteTo is not null)
            await db.FineTuningJobs.Where(j => j.Id == job.Id).ExecuteUpdateAsync(s => s.SetProperty(j => j.Evaluation, metrics), CancellationToken.None);
        // Past this point a cancel is too late: the result is registered whole or not at all.
        var result = await registrar.RegisterAsync(job, embodiment, policy, metrics, work);
        sink.Message($"Registered {result.ModelName}@v{result.Version}.", data: new { checkpoint_id = result.Id, version = result.Version });
        return (result, data, score);
    }

    /// <summary>
    /// When the base was trained for an embodiment of another layout, the base rebuilt for this embodiment's (see
    /// <see cref="VlaPolicy.WithNewHead"/>), with an event naming the tensors that start fresh; otherwise null.
    /// </summary>
    private async Task<NewHead?> NewHeadAsync(VlaPolicy loaded, Checkpoint baseCheckpoint, Embodiment embodiment, long seed, JobEventSink sink, CancellationToken cancellationToken)
    {
        if (baseCheckpoint.EmbodimentId == embodiment.Id) return null;
        var baseEmbodiment = await db.Embodiments.AsNoTracking().FirstOrDefaultAsync(e => e.Id == baseCheckpoint.EmbodimentId, cancellationToken);
        if (baseEmbodiment is null || LayoutDifference(baseEmbodiment, embodiment) is not { } difference) return null;
        var head = loaded.WithNewHead(LayoutOf(baseEmbodiment), LayoutOf(embodiment), seed);
        sink.Message($"New action head for '{embodiment.Name}' (the base was trained for '{baseEmbodiment.Name}': {difference}): "
            + $"{head.Reinitialised.Count} tensors initialised afresh ({string.Join(", ", head.Reinitialised)}), {head.Copied} copied from the base.",
            data: new { new_head = new { reinitialised = head.Reinitialised, copied = head.Copied, base_embodiment = baseEmbodiment.Name } });
        return head;
    }

    private const string WaitingMessage = "Waiting for a running job of the tenant to end";

    private enum Start
    {
        Started,
        AtLimit,
        Gone,
        RunningElsewhere,
        OtherTenantsFirst,
    }

    /// <summary>
    /// Marks the job running as attempt <paramref name="attempt"/>, unless its tenant already runs
    /// <see cref="FineTuningJobOptions.MaxRunningJobsPerTenant"/> other jobs, or the job is no longer queued or running (a
    /// cancel came first). A per-tenant advisory lock makes the count and the update one step, so two trainers picking two
    /// jobs of a tenant at once cannot both start. A running job is taken over only from a trainer whose heartbeat is
    /// stale (or that released it); starting records this trainer as the job's worker, with a fresh heartbeat.
    /// </summary>
    private async Task<Start> TryStartAsync(FineTuningJob job, int attempt, CancellationToken cancellationToken)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var lockKey = job.TenantId.ToString()!;
        await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock(hashtextextended({lockKey}, 0))", cancellationToken);
        var running = await db.FineTuningJobs.CountAsync(j => j.Status == FineTuningJobStatus.Running && j.Id != job.Id, cancellationToken);
        if (running >= Settings.MaxRunningJobsPerTenant) return Start.AtLimit;
        if (job.Status == FineTuningJobStatus.Queued && await OtherTenantGoesFirstAsync(job, cancellationToken)) return Start.OtherTenantsFirst;
        var now = clock.GetUtcNow();
        var stale = now - Settings.HeartbeatTimeout;
        var me = TrainerIdentity.WorkerId;
        var started = await db.FineTuningJobs.Where(j => j.Id == job.Id && (j.Status == FineTuningJobStatus.Queued
                || (j.Status == FineTuningJobStatus.Running && (j.WorkerId == null || j.WorkerId == me || j.WorkerId.StartsWith(TrainerIdentity.ReleasedPrefix)
                    || j.HeartbeatAt == null || j.HeartbeatAt < stale))))
            .ExecuteUpdateAsync(s => s
                .SetProperty(j => j.Status, FineTuningJobStatus.Running)
                .SetProperty(j => j.Attempts, attempt)
                .SetProperty(j => j.WorkerId, me)
                .SetProperty(j => j.HeartbeatAt, now)
                .SetProperty(j => j.StartedAt, j => j.StartedAt ?? now), cancellationToken);
        var runningElsewhere = started == 0 && await db.FineTuningJobs.AnyAsync(j => j.Id == job.Id && j.Status == FineTuningJobStatus.Running, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return started > 0 ? Start.Started : runningElsewhere ? Start.RunningElsewhere : Start.Gone;
    }

    /// <summary>
    /// Whether another tenant, below its running limit, has a job waiting and started its last job before this job's tenant
    /// started its own last one (or never started one): the finetune queue is first-in-first-out, so without this a tenant
    /// that queues ten jobs would have them all run before another tenant's one.
    /// </summary>
    private async Task<bool> OtherTenantGoesFirstAsync(FineTuningJob job, CancellationToken cancellationToken)
    {
        var mine = await db.FineTuningJobs.IgnoreQueryFilters().Where(j => j.TenantId == job.TenantId && j.StartedAt != null)
            .MaxAsync(j => j.StartedAt, cancellationToken);
        if (mine is null) return false;
        // Only jobs actually waiting in the Hangfire queue count (not deferred ones, nor rows whose background job is gone),
        // so a trainer never puts a job back for one it cannot take next.
        var tenantId = job.TenantId;
        var limit = Settings.MaxRunningJobsPerTenant;
        return await db.Database.SqlQuery<bool>($"""
            SELECT EXISTS (
              SELECT 1 FROM fine_tuning_jobs q
              JOIN hangfire.jobqueue w ON w.jobid::text = q.background_job_id AND w.fetchedat IS NULL
              WHERE q.status = 'queued' AND q.tenant_id <> {tenantId}
                AND (SELECT count(*) FROM fine_tuning_jobs r WHERE r.tenant_id = q.tenant_id AND r.status = 'running') < {limit}
                AND NOT EXISTS (SELECT 1 FROM fine_tuning_jobs s WHERE s.tenant_id = q.tenant_id AND s.started_at >= {mine.Value})) AS "Value"
            """).SingleAsync(cancellationToken);
    }

    private async Task FinishAsync(FineTuningJob job, string status, JobEventSink sink, string message, string level = "info")
    {
        sink.StopHeartbeat();
        sink.Message(message, level, new { status });
        await sink.FlushAsync(CancellationToken.None);
        await db.FineTuningJobs.Where(j => j.Id == job.Id).ExecuteUpdateAsync(s => s
            .SetProperty(j => j.Status, status)
            .SetProperty(j => j.FinishedAt, clock.GetUtcNow()), CancellationToken.None);
        logger.LogInformation("Fine-tuning job {JobId} {Status}", job.Id, status);
    }

    /// <summary>How two embodiments' layouts differ (action size, state size, cameras by name and size), or null when they match.</summary>
    public static string? LayoutDifference(Embodiment from, Embodiment to)
    {
        var differences = new List<string>();
        if (from.ActionDim != to.ActionDim) differences.Add($"action size {from.ActionDim} vs {to.ActionDim}");
        if (from.StateDim != to.StateDim) differences.Add($"state size {from.StateDim} vs {to.StateDim}");
        static string Cameras(Embodiment e) => string.Join(", ", e.Cameras.OrderBy(c => c.Name, StringComparer.Ordinal).Select(c => $"{c.Name} {c.Width}×{c.Height}"));
        if (Cameras(from) != Cameras(to)) differences.Add($"cameras [{Cameras(from)}] vs [{Cameras(to)}]");
        return differences.Count == 0 ? null : string.Join("; ", differences);
    }

    /// <summary>What <paramref name="embodiment"/> fixes of a policy's shapes.</summary>
    public static EmbodimentLayout LayoutOf(Embodiment embodiment) => new(embodiment.ActionDim, embodiment.StateDim, embodiment.Cameras.Count);

    /// <summary>How a dataset of <paramref name="embodiment"/> becomes training data: its cameras in order, its binary action dimensions kept 0/1.</summary>
    public static TrainingDataOptions DataOptionsFor(Embodiment embodiment) =>
        new(embodiment.Name, embodiment.BinaryActionDims.Length > 0 ? [.. embodiment.BinaryActionDims] : null,
            [.. embodiment.Cameras.Select(c => VlaCloud.Datasets.LeRobotFeatures.Camera(c.Name))]);

    private static string Truncate(string text) => text.Length > 2000 ? text[..2000] : text;

    private static void TryDelete(string folder)
    {
        try
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
            // Scratch space: whatever is left is deleted by the next attempt.
        }
    }
}
