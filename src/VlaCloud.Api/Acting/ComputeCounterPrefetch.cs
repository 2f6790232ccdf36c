using VlaCloud.Api.Usage;

namespace VlaCloud.Api.Acting;

/// <summary>
/// The tenant's monthly compute counter as the rate limiter's script read it (scoped per request), so the quota check of the
/// same request does not ask Redis again: a /v1/act request or a stream message costs one Redis round trip. A value is taken
/// once; without one (the limiter failed open, or no token was taken for this computation) the quota check reads Redis itself.
/// </summary>
public sealed class ComputeCounterPrefetch
{
    /// <summary>Endpoint metadata: the rate limit filter reads the compute counter along with the token for this endpoint.</summary>
    public sealed class Marker
    {
        /// <summary>The one instance.</summary>
        public static readonly Marker Instance = new();

        private Marker() { }
    }

    private ComputeCounterRead? read;

    /// <summary>Keeps a value read for the next quota check.</summary>
    public void Set(ComputeCounterRead value) => Interlocked.Exchange(ref read, value);

    /// <summary>The value kept for <paramref name="tenantId"/>, removed; null when there is none.</summary>
    public ComputeCounterRead? Take(Guid tenantId) =>
        Interlocked.Exchange(ref read, null) is { } value && value.Probe.TenantId == tenantId ? value : null;
}
