using VlaCloud.Registry.Entities;

namespace VlaCloud.Training.Jobs;

/// <summary>
/// The queue fine-tuning jobs run from, as a job sees it: a job that may not start yet goes back to it. The host
/// implements it with its job scheduler.
/// </summary>
public interface IFineTuneQueue
{
    /// <summary>Puts <paramref name="job"/> back: it is queued again (behind the jobs queued meanwhile) after <paramref name="delay"/>.</summary>
    void Defer(FineTuningJob job, TimeSpan delay);
}
