using Hangfire;
using Hangfire.States;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using VlaCloud.Api.Hosting;
using VlaCloud.Registry;
using VlaCloud.Registry.Entities;
using VlaCloud.Training.Jobs;

namespace VlaCloud.Api;

/// <summary>
/// On every trainer: looks every <see cref="FineTuningJobOptions.HeartbeatInterval"/> for running jobs whose worker
/// heartbeat is older than <see cref="FineTuningJobOptions.HeartbeatTimeout"/> (the trainer was killed or its node
/// is gone) and queues them again, so another trainer resumes them from their last saved step within seconds instead of
/// after Hangfire's invisibility timeout (minutes, and the job shows <c>running</c> meanwhile).
/// </summary>
/// <remarks>
/// The dead worker's Hangfire queue entry is made visible again (what the invisibility timeout would do later), so the
/// job keeps one queue entry and one Hangfire state; only when it has none is it enqueued anew. Claiming a stale job is
/// one conditional update on its row, so of several trainers scanning at once exactly one releases it.
/// </remarks>
internal sealed class StaleJobMonitor(
    IOptions<VlaCloudOptions> hostOptions,
    IOptions<FineTuningJobOptions> options,
    IServiceScopeFactory scopes,
    TimeProvider clock,
    ILogger<StaleJobMonitor> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!hostOptions.Value.IsTrainer) return;
        var interval = options.Value.HeartbeatInterval;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, clock, stoppingToken);
                await ScanAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // Postgres away: the next scan tries again; readiness reports the outage.
                logger.LogWarning(e, "Could not look for fine-tuning jobs whose trainer stopped");
            }
        }
    }

    /// <summary>Releases every running job whose heartbeat is stale; returns how many.</summary>
    public async Task<int> ScanAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<RegistryDbContext>();
        var now = clock.GetUtcNow();
        var cutoff = now - options.Value.HeartbeatTimeout;
        var stale = await db.FineTuningJobs.IgnoreQueryFilters().AsNoTracking()
            .Where(j => j.Status == FineTuningJobStatus.Running && j.HeartbeatAt != null && j.HeartbeatAt < cutoff)
            .Select(j => new { j.Id, j.TenantId, j.WorkerId, j.HeartbeatAt, j.BackgroundJobId })
            .Take(100).ToListAsync(cancellationToken);
        var released = 0;
        foreach (var job in stale)
        {
            var claimed = await db.FineTuningJobs.IgnoreQueryFilters()
                .Where(j => j.Id == job.Id && j.Status == FineTuningJobStatus.Running && j.WorkerId == job.WorkerId && j.HeartbeatAt == job.HeartbeatAt)
                .ExecuteUpdateAsync(s => s
                    .SetProperty(j => j.WorkerId, TrainerIdentity.ReleasedPrefix + TrainerIdentity.WorkerId)
                    .SetProperty(j => j.HeartbeatAt, now), cancellationToken);
            if (claimed == 0 || job.BackgroundJobId is not { } backgroundJobId) continue;

            var requeued = false;
            if (long.TryParse(backgroundJobId, out var hangfireId))
                requeued = await db.Database.ExecuteSqlAsync(
                    $"UPDATE hangfire.jobqueue SET fetchedat = NULL WHERE jobid = {hangfireId}", cancellationToken) > 0;
            if (!requeued)
                scope.ServiceProvider.GetRequiredService<IBackgroundJobClient>().ChangeState(backgroundJobId, new EnqueuedState(HangfireSetup.FineTuneQueue));
            released++;
            if (job.WorkerId?.StartsWith(TrainerIdentity.ReleasedPrefix, StringComparison.Ordinal) == true) continue;

            var seconds = (now - job.HeartbeatAt!.Value).TotalSeconds;
            logger.LogWarning("Fine-tuning job {JobId}: its trainer {Worker} has not answered for {Seconds:F0} s; queued again", job.Id, job.WorkerId, seconds);
            db.JobEvents.Add(new JobEvent
            {
                JobId = job.Id, TenantId = job.TenantId, Level = "warn", Type = "message", CreatedAt = now,
                Message = $"The trainer running the job stopped answering ({seconds:F0} s without a heartbeat); the job is queued again and resumes from its last saved step.",
            });
            await db.SaveChangesAsync(cancellationToken);
        }
        return released;
    }
}
