using System.Collections.Concurrent;
using VlaCloud.Api.Keys;

namespace VlaCloud.Api.Acting;

/// <summary>
/// Checkpoint references resolved for acting, remembered per tenant, so a request with a known reference costs no
/// database query and no parse of the checkpoint's config and statistics. Checkpoint rows never change, but what a
/// reference names can: an alias moves, or a newly registered checkpoint or embodiment shadows a public one or makes a
/// <c>model@vN</c> ambiguous. Each of those publishes on the API key invalidation channel
/// (<see cref="ApiKeyCache.PublishResolutionsChangedAsync"/>) and every replica forgets everything it remembered; while
/// that channel is down the cache is bypassed, as the key cache is.
/// </summary>
public sealed class ResolutionCache : IDisposable
{
    /// <summary>Most references remembered at once; past it the cache starts again.</summary>
    public const int MaxEntries = 10_000;

    private readonly ConcurrentDictionary<(Guid? Tenant, string Reference, string? Embodiment), Entry> entries = new();
    private readonly ApiKeyCache channel;
    private readonly TimeProvider clock;
    private readonly TimeSpan maxAge = TimeSpan.FromMinutes(5);
    private long generation;
    private long misses;

    /// <summary>Listens on <paramref name="channel"/>'s invalidations.</summary>
    public ResolutionCache(ApiKeyCache channel, TimeProvider clock)
    {
        this.channel = channel;
        this.clock = clock;
        channel.ResolutionsInvalidated += Clear;
    }

    /// <summary>Resolutions that went to the database, for diagnostics and tests.</summary>
    public long Misses => Interlocked.Read(ref misses);

    /// <summary>
    /// The remembered resolution of <paramref name="reference"/> for <paramref name="tenant"/>, or the one
    /// <paramref name="resolve"/> reads (remembered unless an invalidation came in meanwhile). Failures are not remembered.
    /// </summary>
    public async Task<BoundCheckpoint> GetOrResolveAsync(Guid? tenant, string reference, string? embodiment, Func<Task<BoundCheckpoint>> resolve)
    {
        var key = (tenant, reference, embodiment);
        var now = clock.GetUtcNow();
        var serving = channel.IsServingFromMemory;
        if (serving && entries.TryGetValue(key, out var cached) && now - cached.LoadedAt < maxAge) return cached.Bound;

        var before = Interlocked.Read(ref generation);
        Interlocked.Increment(ref misses);
        var bound = await resolve();
        if (serving && channel.IsServingFromMemory && Interlocked.Read(ref generation) == before)
        {
            if (entries.Count >= MaxEntries) entries.Clear();
            entries[key] = new Entry(bound, now);
        }
        return bound;
    }

    private void Clear()
    {
        Interlocked.Increment(ref generation);
        entries.Clear();
    }

    /// <inheritdoc />
    public void Dispose() => channel.ResolutionsInvalidated -= Clear;

    private sealed record Entry(BoundCheckpoint Bound, DateTimeOffset LoadedAt);
}
