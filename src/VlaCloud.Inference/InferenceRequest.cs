using VlaCloud.Actions;
using VlaCloud.Policy;

namespace VlaCloud.Inference;

/// <summary>One request for an action chunk.</summary>
/// <param name="Checkpoint">The resolved checkpoint to run (its id, as the model cache keys it).</param>
/// <param name="Observation">What the robot sees and is told.</param>
/// <param name="Seed">Seed of this request's noise: the same seed gives the same actions, whatever the batch.</param>
/// <param name="Steps">Sampling steps (DDIM steps for InternVLA-M1, Euler steps for st4vla), or null for the checkpoint's default.</param>
/// <param name="Spatial">Also decode a spatial answer of this kind (point, box, trajectory, placement), or null.</param>
/// <param name="Deadline">After this instant the request is dropped, before compute if it has not started.</param>
/// <param name="CfgScale">Classifier-free guidance scale (InternVLA-M1 checkpoints), or null for the checkpoint's default.</param>
/// <param name="Tenant">Who pays for it: the queue and each batch are shared fairly between tenants (null: one shared anonymous tenant).</param>
/// <param name="Weight">The tenant's weight in that sharing (2 gets twice the share of 1).</param>
/// <param name="Session">
/// The connection or stream the request belongs to, or null (REST): a session's last prefix is kept per checkpoint and
/// reused while its observation is unchanged (<see cref="InferenceOptions.SessionPrefixes"/>). It must not be shared
/// between tenants; the routes that fill it make it unique per connection.
/// </param>
public sealed record InferenceRequest(
    string Checkpoint, Observation Observation, long Seed, int? Steps, SpatialKind? Spatial, DateTimeOffset Deadline,
    double? CfgScale = null, string? Tenant = null, double Weight = 1, string? Session = null);

/// <summary>The answer to an <see cref="InferenceRequest"/>, with no tensors in it.</summary>
/// <param name="Actions">The action chunk <c>[H, action_dim]</c> in the embodiment's units.</param>
/// <param name="Spatial">The spatial answer, when one was asked for.</param>
/// <param name="QueueTime">From submission to the start of its batch.</param>
/// <param name="ComputeTime">The batch's compute time.</param>
/// <param name="BatchSize">Requests in the batch that served it.</param>
/// <param name="Device">The device that computed it.</param>
/// <param name="Guide">For a point-guided checkpoint, System 2's target and destination points that the actions were conditioned on.</param>
public sealed record InferenceResult(ActionChunk Actions, SpatialPrediction? Spatial, TimeSpan QueueTime, TimeSpan ComputeTime, int BatchSize, string Device, PointGuide? Guide = null);

/// <summary>The queue is full: retry after <see cref="RetryAfter"/>. Nothing was computed.</summary>
public sealed class EngineBusyException(TimeSpan retryAfter)
    : Exception($"The inference queue is full; retry in {retryAfter.TotalSeconds:0.#} s.")
{
    /// <summary>A fair wait before retrying.</summary>
    public TimeSpan RetryAfter { get; } = retryAfter;
}

/// <summary>
/// The request's tenant holds more than its share of the queue (<see cref="InferenceOptions.MaxQueuedPerTenant"/>, or its
/// weighted share of a full queue): only that tenant is refused, every other tenant is still served. Nothing was computed.
/// </summary>
public sealed class TenantShareExceededException(int queued, int share, TimeSpan retryAfter)
    : Exception($"The tenant has {queued} inference requests waiting, its share of the queue is {share}; retry in {retryAfter.TotalSeconds:0.#} s.")
{
    /// <summary>The tenant's requests waiting when this one was refused.</summary>
    public int Queued { get; } = queued;

    /// <summary>The tenant's share of the queue at that moment.</summary>
    public int Share { get; } = share;

    /// <summary>A fair wait before retrying.</summary>
    public TimeSpan RetryAfter { get; } = retryAfter;
}

/// <summary>The request's deadline passed before its batch started; it was not computed.</summary>
public sealed class DeadlineExceededException(TimeSpan waited)
    : TimeoutException($"The request's deadline passed after {waited.TotalMilliseconds:0} ms in the queue; it was not computed.");

/// <summary>
/// The checkpoint could not be loaded. <see cref="Unservable"/>: its artifact is missing, corrupt, not a VlaCloud policy,
/// or too large for the device's memory budget, so retrying cannot help; otherwise the failure may pass (the artifact
/// store did not answer, memory ran out) and <see cref="RetryAfter"/> says when the next attempt is made.
/// </summary>
public sealed class ModelLoadException(string checkpoint, string reason, Exception? inner = null, bool unservable = false, TimeSpan retryAfter = default)
    : Exception($"Checkpoint {checkpoint} could not be loaded: {reason}", inner)
{
    /// <summary>The checkpoint that failed.</summary>
    public string Checkpoint { get; } = checkpoint;

    /// <summary>Why, without the checkpoint's id.</summary>
    public string Reason { get; } = reason;

    /// <summary>Whether the checkpoint itself is at fault, so no retry can serve it.</summary>
    public bool Unservable { get; } = unservable;

    /// <summary>How long the failure is remembered: requests until then are refused without another load.</summary>
    public TimeSpan RetryAfter { get; } = retryAfter;

    /// <summary>The same failure, as remembered for requests until <paramref name="retryAfter"/> has passed.</summary>
    public ModelLoadException Remembered(TimeSpan retryAfter) => new(Checkpoint, Reason, this, Unservable, retryAfter);
}

/// <summary>
/// Where the engine gets a checkpoint's files: a local directory holding an unpacked, verified policy
/// checkpoint (the host implements it over the artifact store).
/// </summary>
public interface ICheckpointSource
{
    /// <summary>A local directory with the checkpoint's files, fetched and verified if needed.</summary>
    Task<string> GetDirectoryAsync(string checkpoint, CancellationToken cancellationToken);
}
