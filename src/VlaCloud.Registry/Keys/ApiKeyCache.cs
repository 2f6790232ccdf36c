using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace VlaCloud.Registry.Keys;

/// <summary>
/// Authenticates keys from memory, reading the database once per key. Every replica subscribes to one Redis
/// channel; a revocation, expiry change or tenant limit change publishes there and each replica drops the
/// entry, so a revoked key stops working everywhere without waiting for a TTL.
/// </summary>
/// <remarks>
/// When the subscription is down the cache cannot hear invalidations, so it is cleared and bypassed until the
/// connection is back. A generation counter stops a lookup that raced with an invalidation from caching the
/// stale row it read.
/// </remarks>
public sealed class ApiKeyCache : IDisposable
{
    private const string ChannelName = "apikeys:invalidate";
    private const string TenantMessagePrefix = "tenant:";
    private const string KeyMessagePrefix = "key:";

    private readonly ConcurrentDictionary<string, Entry> entries = new(StringComparer.Ordinal);
    private readonly IServiceScopeFactory scopes;
    private readonly IConnectionMultiplexer redis;
    private readonly RedisChannel channel;
    private readonly TimeProvider clock;
    private readonly ILogger<ApiKeyCache> logger;
    private readonly TimeSpan maxAge;
    private long generation;
    private volatile bool subscribed;

    /// <summary>Creates the cache and subscribes to invalidations.</summary>
    public ApiKeyCache(IServiceScopeFactory scopes, IConnectionMultiplexer redis, RedisKeyspace keyspace, TimeProvider clock, ILogger<ApiKeyCache> logger)
        : this(scopes, redis, keyspace, clock, logger, TimeSpan.FromMinutes(5))
    {
    }

    /// <summary>Creates the cache with a safety-net maximum entry age.</summary>
    public ApiKeyCache(IServiceScopeFactory scopes, IConnectionMultiplexer redis, RedisKeyspace keyspace, TimeProvider clock, ILogger<ApiKeyCache> logger, TimeSpan maxAge)
    {
        this.scopes = scopes;
        this.redis = redis;
        this.clock = clock;
        this.logger = logger;
        this.maxAge = maxAge;
        channel = keyspace.Channel(ChannelName);
        redis.ConnectionFailed += OnConnectionChanged;
        redis.ConnectionRestored += OnConnectionChanged;
        try
        {
            redis.GetSubscriber().Subscribe(channel, (_, message) => OnMessage(message));
            subscribed = true;
        }
        catch (RedisException e)
        {
            logger.LogWarning(e, "API key cache is bypassed until Redis answers");
        }
    }

    /// <summary>Invalidations received from the channel, for diagnostics and tests.</summary>
    public long InvalidationsReceived => Interlocked.Read(ref generation);

    /// <summary>Number of cached keys.</summary>
    public int Count => entries.Count;

    /// <summary>The identity of <paramref name="presented"/>, or null when it is malformed, unknown, expired or revoked.</summary>
    public async Task<ApiKeyIdentity?> FindActiveAsync(string presented, CancellationToken cancellationToken)
    {
        if (ApiKeyFormat.TryGetPrefix(presented) is not { } prefix) return null;
        var now = clock.GetUtcNow();
        var hash = ApiKeyFormat.Hash(presented);
        if (subscribed && entries.TryGetValue(prefix, out var cached) && now - cached.LoadedAt < maxAge &&
            System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(hash, cached.Hash))
        {
            return cached.Identity.ExpiresAt is { } expires && expires <= now ? null : cached.Identity;
        }

        var before = Interlocked.Read(ref generation);
        await using var scope = scopes.CreateAsyncScope();
        var identity = await scope.ServiceProvider.GetRequiredService<ApiKeyLookup>().FindActiveAsync(presented, now, cancellationToken);
        if (identity is not null && subscribed && Interlocked.Read(ref generation) == before)
            entries[prefix] = new Entry(identity, hash, now);
        return identity;
    }

    /// <summary>Tells every replica to forget the key with this prefix (after it was revoked or changed).</summary>
    public Task PublishKeyChangedAsync(string prefix) => PublishAsync(KeyMessagePrefix + prefix);

    /// <summary>Tells every replica to forget every key of the tenant (after its limits changed).</summary>
    public Task PublishTenantChangedAsync(Guid tenantId) => PublishAsync(TenantMessagePrefix + tenantId);

    private async Task PublishAsync(string message)
    {
        // This replica forgets at once, even before Redis echoes the message back.
        OnMessage(message);
        await redis.GetSubscriber().PublishAsync(channel, message);
    }

    private void OnMessage(RedisValue value)
    {
        Interlocked.Increment(ref generation);
        var message = value.ToString();
        if (message.StartsWith(KeyMessagePrefix, StringComparison.Ordinal))
        {
            entries.TryRemove(message[KeyMessagePrefix.Length..], out _);
        }
        else if (message.StartsWith(TenantMessagePrefix, StringComparison.Ordinal) && Guid.TryParse(message.AsSpan(TenantMessagePrefix.Length), out var tenantId))
        {
            foreach (var (prefix, entry) in entries)
                if (entry.Identity.TenantId == tenantId) entries.TryRemove(prefix, out _);
        }
        else
        {
            entries.Clear();
        }
    }

    private void OnConnectionChanged(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType != ConnectionType.Subscription) return;
        // Messages may have been missed while the subscription was down: start again from the database.
        Interlocked.Increment(ref generation);
        entries.Clear();
        subscribed = redis.IsConnected && e.FailureType == ConnectionFailureType.None;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        redis.ConnectionFailed -= OnConnectionChanged;
        redis.ConnectionRestored -= OnConnectionChanged;
        try
        {
            redis.GetSubscriber().Unsubscribe(channel);
        }
        catch (RedisException)
        {
            // Shutting down with Redis gone: nothing to unsubscribe from.
        }
    }

    private sealed record Entry(ApiKeyIdentity Identity, byte[] Hash, DateTimeOffset LoadedAt);
}
