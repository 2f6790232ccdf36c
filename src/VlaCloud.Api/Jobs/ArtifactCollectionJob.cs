using VlaCloud.Registry.Artifacts;

namespace VlaCloud.Api;

/// <summary>
/// The recurring garbage collection of artifacts (see <see cref="ArtifactCollector"/>): unreferenced claims past the
/// grace period are dropped and blobs nobody names any more are deleted. A recurring job over every tenant.
/// </summary>
public sealed class ArtifactCollectionJob(ArtifactCollector collector)
{
    /// <summary>Runs one collection.</summary>
    public Task<ArtifactCollection> RunAsync(CancellationToken cancellationToken) => collector.CollectAsync(cancellationToken);
}
