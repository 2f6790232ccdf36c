using Microsoft.Extensions.Options;
using VlaCloud.Policy;
using VlaCloud.Registry.Artifacts;

namespace VlaCloud.Inference;

/// <summary>
/// Checks a stored artifact before it is registered as a checkpoint, as the model cache would before loading it: that it
/// is a checkpoint archive, its config.json within range and within a device's memory budget in the serving dtype, and
/// its weights' header consistent with that config. Only the archive's first entries and the weights' header are read;
/// nothing is built. A checkpoint refused here would fail every load.
/// </summary>
public sealed class CheckpointInspector(IArtifactStore artifacts, IOptions<InferenceOptions> options)
{
    /// <summary>The config of artifact <paramref name="sha256"/>.</summary>
    /// <exception cref="CheckpointException">The artifact cannot be served; the message names the file and what is wrong.</exception>
    /// <exception cref="FileNotFoundException">The store does not have the artifact.</exception>
    public async Task<PolicyConfig> InspectAsync(string sha256, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        await using var stream = await artifacts.OpenReadAsync(sha256, cancellationToken);
        // The tar reader is synchronous; the store's stream may be a network one, so it reads on a pool thread.
        return await Task.Run(() => PolicyCheckpoint.Inspect(stream, settings.DType, settings.ModelMemoryBudgetBytes), cancellationToken);
    }
}
