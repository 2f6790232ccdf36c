using Hangfire;
using Hangfire.States;
using VlaCloud.Registry.Entities;
using VlaCloud.Training.Jobs;

namespace VlaCloud.Api;

/// <summary>The fine-tuning queue on Hangfire: a deferred job is scheduled again, and re-enters the <c>finetune</c> queue when due.</summary>
internal sealed class FineTuneQueue(IBackgroundJobClient jobs, ILogger<FineTuneQueue> logger) : IFineTuneQueue
{
    public void Defer(FineTuningJob job, TimeSpan delay)
    {
        // From Processing only: if the job's state moved meanwhile (deleted by a cancel), it stays where it is.
        if (job.BackgroundJobId is { } id && jobs.ChangeState(id, new ScheduledState(delay), ProcessingState.StateName)) return;
        logger.LogWarning("Fine-tuning job {JobId} could not be deferred (background job {BackgroundJobId})", job.Id, job.BackgroundJobId);
    }
}

/// <summary>
/// Keeps fine-tuning jobs on the <c>finetune</c> queue whenever they are enqueued, including a deferred job that a
/// scheduler enqueues when it is due (which would otherwise land on the default queue, where no trainer worker looks).
/// </summary>
internal sealed class FineTuneQueueFilter : IElectStateFilter
{
    public void OnStateElection(ElectStateContext context)
    {
        if (context.CandidateState is EnqueuedState enqueued && context.BackgroundJob.Job?.Type == typeof(FineTuneJob))
            enqueued.Queue = HangfireSetup.FineTuneQueue;
    }
}
