using StackExchange.Redis;
using VlaCloud.Registry;

namespace VlaCloud.Api.Limits;

/// <summary>
/// Concurrent-stream slots per tenant: a Redis sorted set of slot ids scored by lease expiry. A session
/// acquires a slot when it opens, renews it while it lives and releases it when it closes; a replica that
/// dies without releasing loses its slots when their leases run out.
/// </summary>
public sealed class StreamSlots(IConnectionMultiplexer redis, RedisKeyspace keyspace, TimeProvider clock)
{
    // KEYS: the tenant's set. ARGV: slot id, limit, lease ms. Uses Redis TIME for the same clock everywhere.
    private const string AcquireScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        local used = redis.call('ZCARD', KEYS[1])
        local limit = tonumber(ARGV[2])
        if used >= limit then
          local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
          return { 0, used, tonumber(first[2]) - now }
        end
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
        redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + 1000)
        return { 1, used + 1, 0 }
        """;

    private const string RenewScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false then return 0 end
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
        redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 1000)
        return 1
        """;

    /// <summary>Takes a slot for a new stream of <paramref name="tenantId"/>; the decision says whether it got one.</summary>
    public async Task<(LimitDecision Decision, StreamSlot? Slot)> TryAcquireAsync(Guid tenantId, TenantLimits limits, TimeSpan lease)
    {
        var key = keyspace.Key($"streams:{tenantId}");
        var id = Guid.NewGuid().ToString("N");
        var result = (RedisResult[])(await redis.GetDatabase().ScriptEvaluateAsync(AcquireScript, [key],
            [id, limits.MaxConcurrentStreams, (long)lease.TotalMilliseconds]))!;
        var allowed = (long)result[0] == 1;
        var used = (long)result[1];
        var decision = new LimitDecision(allowed, limits.MaxConcurrentStreams, Math.Max(0, limits.MaxConcurrentStreams - used),
            TimeSpan.Zero, TimeSpan.FromMilliseconds(Math.Max(1000, (long)result[2])), allowed ? null : "concurrent streams");
        return (decision, allowed ? new StreamSlot(this, key, id, lease) : null);
    }

    /// <summary>Streams of the tenant holding a live slot now.</summary>
    public async Task<long> CountAsync(Guid tenantId)
    {
        var key = keyspace.Key($"streams:{tenantId}");
        return await redis.GetDatabase().SortedSetLengthAsync(key, clock.GetUtcNow().ToUnixTimeMilliseconds(), double.PositiveInfinity);
    }

    internal async Task<bool> RenewAsync(RedisKey key, string id, TimeSpan lease) =>
        (long)(await redis.GetDatabase().ScriptEvaluateAsync(RenewScript, [key], [id, (long)lease.TotalMilliseconds])) == 1;

    internal Task ReleaseAsync(RedisKey key, string id) => redis.GetDatabase().SortedSetRemoveAsync(key, id);
}

/// <summary>A held stream slot; dispose (or <see cref="ReleaseAsync"/>) when the stream closes.</summary>
public sealed class StreamSlot : IAsyncDisposable
{
    private readonly StreamSlots owner;
    private readonly RedisKey key;
    private readonly TimeSpan lease;
    private int released;

    internal StreamSlot(StreamSlots owner, RedisKey key, string id, TimeSpan lease)
    {
        this.owner = owner;
        this.key = key;
        this.lease = lease;
        Id = id;
    }

    /// <summary>The slot's id.</summary>
    public string Id { get; }

    /// <summary>Extends the lease; false when it had already run out (the stream should close).</summary>
    public Task<bool> RenewAsync() => owner.RenewAsync(key, Id, lease);

    /// <summary>Gives the slot back.</summary>
    public Task ReleaseAsync() => Interlocked.Exchange(ref released, 1) == 0 ? owner.ReleaseAsync(key, Id) : Task.CompletedTask;

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await ReleaseAsync();
}
