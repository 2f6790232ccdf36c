namespace VlaCloud.Training.Jobs;

/// <summary>Who this trainer process is, as a running job's <c>worker_id</c> names it.</summary>
public static class TrainerIdentity
{
    /// <summary>Prefix of the worker id a trainer writes when it releases a dead trainer's job for any trainer to take.</summary>
    public const string ReleasedPrefix = "released-by:";

    /// <summary>
    /// This process: host, process id and a nonce (a restarted container may get the same pid, and must not pass for the
    /// process that ran the job before it).
    /// </summary>
    public static string WorkerId { get; } =
        $"{(Environment.MachineName.Length > 120 ? Environment.MachineName[..120] : Environment.MachineName)}:{Environment.ProcessId}:{Guid.NewGuid():N}";
}
