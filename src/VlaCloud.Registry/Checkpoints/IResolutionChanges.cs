namespace VlaCloud.Registry.Checkpoints;

/// <summary>
/// Where the registry announces that what checkpoint references resolve to may have changed (an alias moved or was
/// deleted, a checkpoint or embodiment was registered), so every replica's cache of resolutions forgets its entries.
/// </summary>
/// <remarks>
/// The registry says when; the host says how (it carries the message on the channel its key cache already subscribes
/// to, one subscription per replica). An interface, so the registry does not depend on the host's caches.
/// </remarks>
public interface IResolutionChanges
{
    /// <summary>Announces the change: this replica forgets at once, the others when the message reaches them.</summary>
    Task PublishResolutionsChangedAsync();
}
