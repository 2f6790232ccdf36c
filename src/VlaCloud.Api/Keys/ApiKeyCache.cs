using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using VlaCloud.Registry;
using VlaCloud.Registry.Checkpoints;

namespace VlaCloud.Api.Keys;

/// <summary>What an invalidation message names: one key (by prefix), every key of a tenant, or everything.</summary>
/// <param name="Prefix">The key's prefix, for a key message.</param>
/// <param name="TenantId">The tenant, for a tenant message.</param>
public sealed record KeyInvalidation(string? Prefix, Guid? TenantId)
{
    /// <summary>Everything may have changed (a message of an unknown kind, or a subscription that was down).</summary>
    public static KeyInvalidation All { get; } = new(null, null);

    /// <summary>Whether a key of <paramref name="identity"/> is concerned.</summary>
    public bool Concerns(ApiKeyIdentity identity) =>
        Prefix is not null ? Prefix == identity.Prefix : TenantId is null || TenantId == identity.TenantId;
}

/// <summary>
/// Authenticates keys from memory, reading the database once per key. Every replica subscribes to one Redis
/// channel; a revocation, expiry change or tenant limit change publishes there and each replica drops the
/// entry, so a revoked key stops working everywhere without waiting for a TTL. Unknown keys are remembered for a
/// minute too, so a client repeating a wrong key costs no database query.
/// </summary>
/// <remarks>
/// While the subscription is down the cache cannot hear invalidations, so it is cleared and bypassed; it checks the
/// subscription again on each lookup and serves from memory as soon as it is back, whatever order the connection
/// events came in. A generation counter stops a lookup that raced with an invalidation from caching the stale row
/// it read. Unknown keys are remembered by the hash of the whole key string, never by prefix, so a wrong secret
/// presented with a real key's prefix cannot lock that key out; keys are random, so one unknown now is not
/// issued later.
/// </remarks>
public sealed class ApiKeyCache : IResolutionChanges, IDisposable
{
    private const string ChannelName = "apikeys:invalidate";
    private const string TenantMessagePrefix = "tenant:";
    private const string KeyMessagePrefix = "key:";
    private const string ResolutionsMessage = "resolutions";

    /// <summary>Most unknown keys remembered at once; past it the oldest half is forgotten.</summary>
    public const int MaxUnknownKeys = 10_000;

    private readonly ConcurrentDictionary<string, Entry> entries = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> unknown = new(StringComparer.Ordinal);
    private readonly IServiceScopeFactory scopes;
    private readonly IConnectionMultiplexer redis;
    private readonly RedisChannel channel;
    private readonly TimeProvider clock;
    private readonly ILogger<ApiKeyCache> logger;
    private readonly TimeSpan maxAge;
    private readonly TimeSpan unknownKeyLifetime = TimeSpan.FromMinutes(1);
    private readonly Lock transition = new();
    private long generation;
    private long databaseLookups;
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
            // The handler stays registered with the multiplexer, which subscribes it when Redis answers.
            logger.LogWarning(e, "API key cache is bypassed until Redis answers");
        }
    }

    /// <summary>
    /// Raised after an invalidation reached this replica (from any replica, or a subscription that came back and
    /// may have missed some), so sessions opened with a key can check it again.
    /// </summary>
    public event Action<KeyInvalidation>? Invalidated;

    /// <summary>
    /// Raised when what a checkpoint reference resolves to may have changed on any replica (an alias moved or was deleted,
    /// a checkpoint or embodiment was registered), and whenever the channel may have missed messages, so caches of
    /// resolutions (see <see cref="PublishResolutionsChangedAsync"/>) forget theirs. The same channel as key revocations:
    /// one subscription per replica, one place that knows whether it is up.
    /// </summary>
    public event Action? ResolutionsInvalidated;

    /// <summary>Invalidations received from the channel, for diagnostics and tests.</summary>
    public long InvalidationsReceived => Interlocked.Read(ref generation);

    /// <summary>Lookups that went to the database, for diagnostics and tests.</summary>
    public long DatabaseLookups => Interlocked.Read(ref databaseLookups);

    /// <summary>Number of cached keys.</summary>
    public int Count => entries.Count;

    /// <summary>Whether invalidations are heard now (the subscription is up), so memory may answer.</summary>
    public bool IsServingFromMemory => IsSubscribed();

    /// <summary>
    /// Answers from memory alone: true with the identity for a cached active key, true with null for a key known
    /// to be unknown or malformed, false when only the database can tell.
    /// </summary>
    public bool TryFindInMemory(string presented, out ApiKeyIdentity? identity)
    {
        identity = null;
        if (ApiKeyFormat.TryGetPrefix(presented) is not { } prefix) return true;
        var now = clock.GetUtcNow();
        var hash = ApiKeyFormat.Hash(presented);
        if (unknown.TryGetValue(Convert.ToHexString(hash), out var until) && until > now) return true;
        if (IsSubscribed() && entries.TryGetValue(prefix, out var cached) && now - cached.LoadedAt < maxAge &&
            CryptographicOperations.FixedTimeEquals(hash, cached.Hash))
        {
            identity = cached.Identity.ExpiresAt is { } expires && expires <= now ? null : cached.Identity;
            return true;
        }
        return false;
    }

    /// <summary>The identity of <paramref name="presented"/>, or null when it is malformed, unknown, expired or revoked.</summary>
    /// <exception cref="Exception">The database does not answer (nothing is remembered then).</exception>
    public async Task<ApiKeyIdentity?> FindActiveAsync(string presented, CancellationToken cancellationToken)
    {
        if (TryFindInMemory(presented, out var known)) return known;
        var prefix = ApiKeyFormat.TryGetPrefix(presented)!;
        var now = clock.GetUtcNow();
        var hash = ApiKeyFormat.Hash(presented);

        var before = Interlocked.Read(ref generation);
        Interlocked.Increment(ref databaseLookups);
        await using var scope = scopes.CreateAsyncScope();
        var identity = await scope.ServiceProvider.GetRequiredService<ApiKeyLookup>().FindActiveAsync(presented, now, cancellationToken);
        if (identity is null) RememberUnknown(Convert.ToHexString(hash), now);
        else if (IsSubscribed() && Interlocked.Read(ref generation) == before) entries[prefix] = new Entry(identity, hash, now);
        return identity;
    }

    /// <summary>Tells every replica to forget the key with this prefix (after it was revoked or changed).</summary>
    public Task PublishKeyChangedAsync(string prefix) => PublishAsync(KeyMessagePrefix + prefix);

    /// <summary>Tells every replica to forget every key of the tenant (after its limits changed).</summary>
    public Task PublishTenantChangedAsync(Guid tenantId) => PublishAsync(TenantMessagePrefix + tenantId);

    /// <summary>
    /// Tells every replica that checkpoint references may resolve differently now (after an alias moved or was deleted,
    /// or a checkpoint or embodiment was registered); this replica forgets at once.
    /// </summary>
    public Task PublishResolutionsChangedAsync() => PublishAsync(ResolutionsMessage);

    private async Task PublishAsync(string message)
    {
        // This replica forgets at once, even before Redis echoes the message back.
        OnMessage(message);
        try
        {
            await redis.GetSubscriber().PublishAsync(channel, message);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // The change is in the database already. A replica that cannot hear this either has its subscription down
            // too (so it bypasses its cache) or clears its cache when the subscription comes back.
            logger.LogWarning(e, "Could not publish the API key invalidation {Message}; replicas catch up when Redis answers", message);
        }
    }

    private void RememberUnknown(string hashHex, DateTimeOffset now)
    {
        if (unknown.Count >= MaxUnknownKeys)
        {
            // Bounded memory under a flood of random keys: the expired go first, then the older half.
            foreach (var (key, until) in unknown)
                if (until <= now) unknown.TryRemove(key, out _);
            if (unknown.Count >= MaxUnknownKeys)
                foreach (var (key, _) in unknown.OrderBy(e => e.Value).Take(unknown.Count / 2).ToList())
                    unknown.TryRemove(key, out _);
        }
        unknown[hashHex] = now + unknownKeyLifetime;
    }

    private bool IsSubscribed()
    {
        if (subscribed) return true;
        if (!redis.GetSubscriber().IsConnected(channel)) return false;
        lock (transition)
        {
            if (subscribed) return true;
            // Back after a failure or a start without Redis: what was missed meanwhile goes with the cleared entries.
            Interlocked.Increment(ref generation);
            entries.Clear();
            subscribed = true;
        }
        logger.LogInformation("API key cache serves from memory again: the invalidation channel is subscribed");
        Invalidated?.Invoke(KeyInvalidation.All);
        ResolutionsInvalidated?.Invoke();
        return true;
    }

    private void OnMessage(RedisValue value)
    {
        var message = value.ToString();
        if (message == ResolutionsMessage)
        {
            // Not about keys: the key entries stay.
            ResolutionsInvalidated?.Invoke();
            return;
        }
        Interlocked.Increment(ref generation);
        KeyInvalidation invalidation;
        if (message.StartsWith(KeyMessagePrefix, StringComparison.Ordinal))
        {
            var prefix = message[KeyMessagePrefix.Length..];
            entries.TryRemove(prefix, out _);
            invalidation = new KeyInvalidation(prefix, null);
        }
        else if (message.StartsWith(TenantMessagePrefix, StringComparison.Ordinal) && Guid.TryParse(message.AsSpan(TenantMessagePrefix.Length), out var tenantId))
        {
            foreach (var (prefix, entry) in entries)
                if (entry.Identity.TenantId == tenantId) entries.TryRemove(prefix, out _);
            invalidation = new KeyInvalidation(null, tenantId);
        }
        else
        {
            entries.Clear();
            invalidation = KeyInvalidation.All;
            ResolutionsInvalidated?.Invoke();
        }
        Invalidated?.Invoke(invalidation);
    }

    private void OnConnectionChanged(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType != ConnectionType.Subscription) return;
        // Messages may have been missed while the subscription was down: start again from the database. Whether it is up
        // again is asked of the subscription itself on the next lookup, not read from the order these events come in.
        lock (transition)
        {
            Interlocked.Increment(ref generation);
            entries.Clear();
            subscribed = false;
        }
        ResolutionsInvalidated?.Invoke();
        if (e.FailureType == ConnectionFailureType.None) IsSubscribed();
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
