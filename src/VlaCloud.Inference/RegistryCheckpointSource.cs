using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using VlaCloud.Policy;
using VlaCloud.Registry;
using VlaCloud.Registry.Artifacts;

namespace VlaCloud.Inference;

/// <summary>
/// Fetches a registered checkpoint's artifact (a tar of the checkpoint folder) from the artifact store,
/// checks its SHA-256 on the way, and unpacks it once into a local cache folder named by that hash.
/// The caller already resolved the checkpoint for its tenant, so the lookup here is by id alone.
/// </summary>
public sealed class RegistryCheckpointSource(IServiceScopeFactory scopes, IArtifactStore artifacts, IOptions<InferenceOptions> options) : ICheckpointSource
{
    private readonly SemaphoreSlim unpacking = new(1, 1);

    /// <inheritdoc />
    public async Task<string> GetDirectoryAsync(string checkpoint, CancellationToken cancellationToken)
    {
        if (!Guid.TryParse(checkpoint, out var id)) throw new ModelLoadException(checkpoint, "not a checkpoint id");
        string? sha;
        await using (var scope = scopes.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<RegistryDbContext>();
            sha = await db.Checkpoints.IgnoreQueryFilters().AsNoTracking()
                .Where(c => c.Id == id).Select(c => c.Sha256).FirstOrDefaultAsync(cancellationToken);
        }
        if (sha is null) throw new ModelLoadException(checkpoint, "it is not registered", unservable: true);

        var directory = Path.Combine(options.Value.CheckpointCachePath, sha);
        if (File.Exists(Path.Combine(directory, PolicyCheckpoint.ManifestFile))) return directory;

        await unpacking.WaitAsync(cancellationToken);
        try
        {
            if (File.Exists(Path.Combine(directory, PolicyCheckpoint.ManifestFile))) return directory;
            // Unpack beside the final folder and rename, so a crash never leaves a half-written checkpoint behind.
            var staging = $"{directory}.{Guid.NewGuid():N}.partial";
            try
            {
                await using (var stream = await artifacts.OpenReadAsync(sha, cancellationToken))
                {
                    // A store may check the hash up front or when the stream ends: reading to the end covers both.
                    PolicyCheckpoint.Unpack(stream, staging);
                    await stream.CopyToAsync(Stream.Null, cancellationToken);
                }
                if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
                Directory.Move(staging, directory);
            }
            catch (Exception e) when (e is ArtifactCorruptedException or CheckpointException or InvalidDataException)
            {
                // The artifact's bytes are what they are (content-addressed): no retry serves them.
                throw new ModelLoadException(checkpoint, e.Message, e, unservable: true);
            }
            catch (IOException e)
            {
                // The store or the local disk failed (a missing blob included: it may be restored); this may pass.
                throw new ModelLoadException(checkpoint, e is FileNotFoundException ? $"its artifact {sha} is not in the artifact store" : e.Message, e);
            }
            finally
            {
                if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
            }
            return directory;
        }
        finally
        {
            unpacking.Release();
        }
    }
}
