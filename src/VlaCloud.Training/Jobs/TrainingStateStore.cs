using System.Formats.Tar;
using System.Threading.Channels;
using Microsoft.EntityFrameworkCore;
using VlaCloud.Registry;
using VlaCloud.Registry.Artifacts;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Training.Jobs;

/// <summary>
/// A fine-tuning job's resumable training states in the artifact store: every interval's state uploaded as it is saved
/// (so a retry on another trainer resumes from it), and the job's last one restored when a run resumes.
/// </summary>
internal sealed class TrainingStateStore(IArtifactStore store, DbContextOptions<RegistryDbContext> dbOptions, TimeProvider clock)
{
    /// <summary>Artifact kind of saved training states.</summary>
    public const string Kind = "training_state";

    /// <summary>
    /// Uploads each packed training state <paramref name="reader"/> yields, records it as the job's checkpoint at its step and
    /// moves the job's resume point forward to it; a failed upload is reported and the earlier state stays the resume point.
    /// </summary>
    public async Task UploadAsync(FineTuningJob job, ChannelReader<(int Step, string Tar, TrainingProgress Metrics)> reader, JobEventSink sink, CancellationToken cancellationToken)
    {
        await foreach (var (step, tar, metrics) in reader.ReadAllAsync(CancellationToken.None))
        {
            try
            {
                ArtifactInfo info;
                await using (var file = File.OpenRead(tar)) info = await store.PutAsync(file, cancellationToken);
                await JobArtifacts.RecordAsync(dbOptions, job.TenantId, info, Kind, clock);
                await using var context = new RegistryDbContext(dbOptions, new FixedTenantAccessor(job.TenantId));
                if (!await context.JobCheckpoints.AnyAsync(c => c.JobId == job.Id && c.Step == step, cancellationToken))
                {
                    context.JobCheckpoints.Add(new JobCheckpoint
                    {
                        JobId = job.Id, TenantId = job.TenantId, Step = step, ArtifactSha256 = info.Sha256, SizeBytes = info.SizeBytes,
                        Metrics = TrainingReporter.MetricsJson(metrics), CreatedAt = clock.GetUtcNow(),
                    });
                    await context.SaveChangesAsync(cancellationToken);
                }
                // Only forward: a late upload of an older state never moves the resume point back.
                await context.FineTuningJobs.Where(j => j.Id == job.Id && j.LastSavedStep < step).ExecuteUpdateAsync(s => s
                    .SetProperty(j => j.LastSavedStep, step).SetProperty(j => j.ResumeArtifactSha256, info.Sha256), cancellationToken);
                sink.Message($"{JobMetrics.SavedPrefix} at step {step}.", data: new { step, sha256 = info.Sha256 });
                sink.FlushSoon(); // a save point: the steps up to it are written now
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                sink.Message($"Could not save the training state at step {step}: {e.Message}", "warn");
            }
            catch (OperationCanceledException)
            {
                // The run is stopping; the earlier state stays the resume point.
            }
            finally
            {
                File.Delete(tar);
            }
        }
    }

    /// <summary>Unpacks the saved training state <paramref name="sha256"/> into <paramref name="folder"/>, where the trainer resumes from it.</summary>
    public async Task RestoreAsync(string sha256, string folder, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(folder);
        await using var source = await store.OpenReadAsync(sha256, cancellationToken);
        await TarFile.ExtractToDirectoryAsync(source, folder, overwriteFiles: true, cancellationToken);
    }
}
