namespace VlaCloud.Training.Jobs;

/// <summary>Settings of trainer processes, section <c>VlaCloud:FineTuning</c>.</summary>
public sealed class FineTuningJobOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "VlaCloud:FineTuning";

    /// <summary>
    /// Local scratch folder (extracted datasets, the running job's training states). Nothing here must survive the
    /// process: resumable states are copied to the artifact store, which trainer pods share.
    /// </summary>
    public string WorkPath { get; set; } = Path.Combine(Path.GetTempPath(), "vlacloud-work");

    /// <summary>Device training runs on (<c>cpu</c>, <c>cuda</c>).</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>
    /// Episodes per closed-loop evaluation of jobs created before each job carried its own count (the API's
    /// <c>evaluation_episodes</c>, default 50); newer jobs ignore it.
    /// </summary>
    public int EvaluationEpisodes { get; set; } = 4;

    /// <summary>Denoising steps per action chunk in evaluation.</summary>
    public int EvaluationInferenceSteps { get; set; } = 4;

    /// <summary>How often a running job checks whether it was cancelled (and beats its heartbeat).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Longest a running job's queued events wait before they are written (one write for all of them, then one pub/sub
    /// nudge to live readers). Save points, evaluations and the end of a run write at once.
    /// </summary>
    public TimeSpan EventFlushInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Training steps whose metrics events are written together at most: a write happens at this many, or at <see cref="EventFlushInterval"/>, whichever comes first.</summary>
    public int EventFlushSteps { get; set; } = 50;

    /// <summary>
    /// Runs a job may start. A run whose trainer dies (killed for memory, a crashed pod) counts; a trainer that stops
    /// in order does not. A job whose runs all died is failed with the reason instead of being run again.
    /// </summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>Jobs of one tenant running at once; a trainer that picks another one puts it back for later.</summary>
    public int MaxRunningJobsPerTenant { get; set; } = 2;

    /// <summary>How long a job put back for its tenant's running limit waits before it is queued again.</summary>
    public TimeSpan DeferDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a job put back for round-robin between tenants (another tenant waited longer since its last start) waits
    /// before it is queued again; meanwhile the trainer takes the other tenant's job.
    /// </summary>
    public TimeSpan RoundRobinDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How often a running job's trainer records its heartbeat, and how often trainers look for stale ones.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(4);

    /// <summary>
    /// A running job whose heartbeat is older than this lost its trainer (killed, its node gone): another trainer
    /// queues it again, and it resumes from its last saved step. With the interval, a dead trainer's job is picked up
    /// within about <c>HeartbeatTimeout + HeartbeatInterval</c> plus one queue poll (well under 30 s by default).
    /// </summary>
    public TimeSpan HeartbeatTimeout { get; set; } = TimeSpan.FromSeconds(12);

    /// <summary>Largest extracted dataset.</summary>
    public long MaxDatasetBytes { get; set; } = 20L << 30;

    /// <summary>Episodes per closed-loop evaluation of <paramref name="job"/>: its own count, or this one for jobs from before jobs had it.</summary>
    public int EvaluationEpisodesOf(VlaCloud.Registry.Entities.FineTuningJob job) => job.EvaluationEpisodes ?? EvaluationEpisodes;
}
