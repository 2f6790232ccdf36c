using System.Collections.Concurrent;
using System.Diagnostics;
using StackExchange.Redis;
using VlaCloud.Registry;

namespace VlaCloud.Api.Limits;

/// <summary>
/// This replica's admission leases: per tenant and key, tokens already taken from the Redis buckets and not yet spent
/// here, so a busy key's requests are admitted from memory instead of each waiting on a Redis round trip. Redis stays the
/// one source of truth: a lease only ever holds tokens Redis granted, so all replicas together admit no more than the
/// buckets allow; what a lease costs is under-admission (tokens held here while another replica is refused), bounded by the
/// lease window (<see cref="LimitsOptions.LeaseWindow"/>), after which unused tokens go back to Redis.
/// </summary>
/// <remarks>
/// Only the state lives here (thread-safe: each <see cref="Lease"/> is its own lock, held only for a few field updates,
/// never across an await); the Redis calls are <see cref="RequestRateLimiter"/>'s. A lease's size adapts to the rate this
/// replica has seen for the pair over the last window: 1 token (one Redis call per request, as without leases) until
/// several tokens would be spent within one window.
/// </remarks>
internal sealed class AdmissionLeases
{
    /// <summary>A pair not seen for this long (and holding nothing) is dropped, so the table only holds active keys.</summary>
    internal static readonly TimeSpan IdleEviction = TimeSpan.FromSeconds(30);

    private readonly ConcurrentDictionary<(Guid Tenant, Guid Key), Lease> leases = new();
    private readonly long windowTicks;
    private readonly double windowSeconds;

    public AdmissionLeases(TimeSpan window)
    {
        if (window <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(window), "A lease window must be positive.");
        Window = window;
        windowSeconds = window.TotalSeconds;
        windowTicks = (long)(windowSeconds * Stopwatch.Frequency);
    }

    /// <summary>How long tokens taken from Redis may stay unspent here.</summary>
    public TimeSpan Window { get; }

    /// <summary>Pairs in the table (for tests and the bounded-memory claim).</summary>
    public int Count => leases.Count;

    /// <summary>The entry of a pair, created when first seen. Callers lock it and check <see cref="Lease.Evicted"/>.</summary>
    public Lease Get(Guid tenantId, Guid keyId) => leases.GetOrAdd((tenantId, keyId), static (k, now) => new Lease(k.Tenant, k.Key, now), Stopwatch.GetTimestamp());

    /// <summary>The entry of a pair if present, for tests.</summary>
    public Lease? Find(Guid tenantId, Guid keyId) => leases.TryGetValue((tenantId, keyId), out var lease) ? lease : null;

    /// <summary>
    /// Counts a request of the pair in its observed rate (under the lease's lock). The rate is measured over periods of one
    /// window: a period ends at the first request after it, and its rate is its requests over its real length, so a pause
    /// of any length counts as such.
    /// </summary>
    public void Observe(Lease lease, long now)
    {
        var elapsed = now - lease.PeriodStart;
        if (elapsed >= windowTicks)
        {
            lease.Rate = lease.PeriodCount / ((double)elapsed / Stopwatch.Frequency);
            lease.PeriodCount = 0;
            lease.PeriodStart = now;
        }
        lease.PeriodCount++;
        lease.LastSeen = now;
    }

    /// <summary>
    /// How many tokens to ask Redis for (under the lease's lock): what this replica would spend in one window at the rate
    /// it last saw, but never more than an eighth of the smaller burst nor one window of the smaller rate, and at least 1.
    /// The caps keep what one replica can hold (and so leave unspent for the others) small against what the limit allows.
    /// </summary>
    public int Size(Lease lease, TenantLimits limits)
    {
        var cap = Math.Min(Math.Min(limits.Burst, limits.KeyBurst) / 8.0, Math.Min(limits.RequestsPerSecond, limits.KeyRequestsPerSecond) * windowSeconds);
        var size = Math.Min(lease.Rate * windowSeconds, cap);
        return size >= 2 ? (int)size : 1;
    }

    /// <summary>
    /// Takes one token of the lease for a request (under the lease's lock) when the lease holds one that may serve it: not
    /// expired, taken under the same limits, and, when the request needs the compute counter, read with that counter.
    /// </summary>
    public bool TryTake(Lease lease, long now, TenantLimits limits, RedisKey? counter)
    {
        if (lease.Tokens <= 0 || now >= lease.ExpiresAt || !Equals(lease.Limits, limits)) return false;
        if (counter is { } wanted && (lease.CounterKey is not { } held || !held.Equals(wanted))) return false;
        lease.Tokens--;
        return true;
    }

    /// <summary>
    /// Whether to start a background refill after a token was taken (under the lock): the lease is down to a quarter of its
    /// last grant, this replica's rate asks for more than 1 token per lease, and no Redis call of the pair is under way.
    /// </summary>
    public bool ShouldRefill(Lease lease, TenantLimits limits) =>
        lease.Refill is null && lease.Pending == 0 && lease.Tokens <= lease.LastGranted / 4 && Size(lease, limits) > 1;

    /// <summary>
    /// Takes out (under the lock) the unused tokens of a lease that may no longer serve requests, to go back to Redis with
    /// the next call: it expired, or (with <paramref name="limits"/>) the tenant's limits changed since it was taken, so a
    /// lowered limit is not exceeded by tokens taken under the old one.
    /// </summary>
    public int TakeExpired(Lease lease, long now, TenantLimits? limits = null)
    {
        if (lease.Tokens <= 0 || (now < lease.ExpiresAt && (limits is null || Equals(lease.Limits, limits)))) return 0;
        var back = lease.Tokens;
        lease.Tokens = 0;
        return back;
    }

    /// <summary>
    /// Adds what Redis granted to the lease (under the lock) and restarts its window: <paramref name="tokens"/> is what is
    /// left of the grant after the request that asked (if any) took its own.
    /// </summary>
    public void Add(Lease lease, long now, TenantLimits limits, int tokens, int granted, LimitDecision redis, RedisKey? counterKey, RedisValue counter)
    {
        if (!Equals(lease.Limits, limits)) lease.Limits = limits;
        lease.Tokens += tokens;
        lease.LastGranted = granted;
        lease.ExpiresAt = now + windowTicks;
        lease.RedisLimit = redis.Limit;
        lease.RedisRemaining = redis.Remaining;
        lease.RedisResetAfter = redis.ResetAfter;
        if (counterKey is not null)
        {
            lease.CounterKey = counterKey;
            lease.Counter = counter;
        }
    }

    /// <summary>
    /// The decision for a request served from the lease (under the lock). <c>Remaining</c> is what Redis reported after the
    /// lease was taken plus what the lease still holds: exact when taken, it does not see what other replicas took or what
    /// refilled since (at most one window ago). <c>ResetAfter</c> is Redis's figure at that time.
    /// </summary>
    public static LimitDecision Decision(Lease lease) =>
        new(true, lease.RedisLimit, lease.RedisRemaining + lease.Tokens, lease.RedisResetAfter, TimeSpan.Zero);

    /// <summary>
    /// Takes out every lease's unused tokens that are due back in Redis: expired ones, or all of them when
    /// <paramref name="all"/> (the process stops); drops pairs idle for <see cref="IdleEviction"/> that hold nothing and have
    /// no call under way.
    /// </summary>
    public List<(Guid Tenant, Guid Key, TenantLimits Limits, int Tokens)> Sweep(long now, bool all)
    {
        var due = new List<(Guid, Guid, TenantLimits, int)>();
        var idle = (long)(IdleEviction.TotalSeconds * Stopwatch.Frequency);
        foreach (var (pair, lease) in leases)
        {
            lock (lease)
            {
                int back;
                if (all) (back, lease.Tokens) = (lease.Tokens, 0);
                else back = TakeExpired(lease, now);
                if (back > 0 && lease.Limits is { } limits) due.Add((pair.Tenant, pair.Key, limits, back));
                if (lease.Tokens == 0 && lease.Pending == 0 && lease.Refill is null && now - lease.LastSeen > idle)
                {
                    lease.Evicted = true;
                    leases.TryRemove(new KeyValuePair<(Guid, Guid), Lease>(pair, lease));
                }
            }
        }
        return due;
    }

    /// <summary>One tenant and key's lease; every field is guarded by locking the instance.</summary>
    internal sealed class Lease(Guid tenantId, Guid keyId, long created)
    {
        public Guid TenantId { get; } = tenantId;
        public Guid KeyId { get; } = keyId;

        /// <summary>Tokens Redis granted that no request has spent yet.</summary>
        public int Tokens;
        /// <summary>When the tokens are due back (a <see cref="Stopwatch"/> timestamp).</summary>
        public long ExpiresAt;
        /// <summary>The limits the tokens were taken under; a request under other limits (the tenant was changed) asks Redis.</summary>
        public TenantLimits? Limits;
        /// <summary>The compute counter read with the last grant, and its value.</summary>
        public RedisKey? CounterKey;
        public RedisValue Counter;
        /// <summary>The counter the last request that needed one asked for; background refills read it.</summary>
        public RedisKey? WantedCounter;
        /// <summary>What Redis reported with the last grant, for the headers.</summary>
        public long RedisLimit, RedisRemaining;
        public TimeSpan RedisResetAfter;
        /// <summary>Tokens Redis granted the last time it was asked (1 when the lease is off for this pair).</summary>
        public int LastGranted;
        /// <summary>The current rate period: its start, its requests, and the rate of the last finished one (requests/s).</summary>
        public long PeriodStart = created;
        public int PeriodCount;
        public double Rate;
        public long LastSeen = created;
        /// <summary>Requests' own Redis calls under way; the entry is not evicted while any is.</summary>
        public int Pending;
        /// <summary>The background refill under way, which requests finding the lease empty wait for.</summary>
        public TaskCompletionSource? Refill;
        /// <summary>Dropped from the table: a caller holding it looks the pair up again.</summary>
        public bool Evicted;
    }
}
