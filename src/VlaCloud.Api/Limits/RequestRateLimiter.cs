using System.Diagnostics;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VlaCloud.Registry;

namespace VlaCloud.Api.Limits;

/// <summary>
/// Token buckets in Redis, one per tenant and one per key, taken together in one Lua script so a request
/// is charged to both or to neither. Redis's own clock (<c>TIME</c>) is used, so replicas with skewed clocks
/// agree. The same script may also read a counter (the tenant's monthly compute total), so a request that is limited
/// and then checked against its quota costs one Redis round trip.
/// </summary>
/// <remarks>
/// With <see cref="LimitsOptions.LeaseWindow"/> set, a key this replica sees at a sustained rate takes several tokens per
/// round trip and admits the next requests from memory (<see cref="AdmissionLeases"/>): Redis still grants every token,
/// so replicas together never admit more than the buckets allow; unused tokens go back when the lease expires or the
/// process stops. A key at a low rate takes one token per request, exactly as with leases off.
/// </remarks>
public sealed class RequestRateLimiter : IAsyncDisposable, IDisposable
{
    // KEYS: tenant bucket, key bucket[, counter]. ARGV: tenant rate, tenant burst, key rate, key burst, tokens asked,
    // tokens given back. A bucket is a hash {tokens, ts_us}; missing means full. Given-back tokens are added first (capped
    // at the burst); then min(asked, whole tokens of either bucket) are taken, or none when that is under 1 (refused).
    // Returns {allowed, limit, remaining, reset_ms, retry_ms, granted[, counter]} for the tighter bucket; counter is the GET
    // of KEYS[3] (nil when missing) and is read only when a third key is given. Asked 1, given back 0 is the one-token
    // check this script always was; asked 0 only gives back.
    private const string Script = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local function level(key, rate, burst)
          local b = redis.call('HMGET', key, 'tokens', 'ts')
          local tokens = tonumber(b[1])
          local ts = tonumber(b[2])
          if tokens == nil then return burst end
          return math.min(burst, tokens + (now - ts) / 1000000 * rate)
        end
        local rates = { tonumber(ARGV[1]), tonumber(ARGV[3]) }
        local bursts = { tonumber(ARGV[2]), tonumber(ARGV[4]) }
        local asked = tonumber(ARGV[5])
        local back = tonumber(ARGV[6])
        local levels = { level(KEYS[1], rates[1], bursts[1]), level(KEYS[2], rates[2], bursts[2]) }
        if back > 0 then
          for i = 1, 2 do levels[i] = math.min(bursts[i], levels[i] + back) end
        end
        local granted = math.min(asked, math.floor(levels[1]), math.floor(levels[2]))
        local allowed = granted >= 1
        if not allowed then granted = 0 end
        local tight = 1
        if (levels[2] / bursts[2]) < (levels[1] / bursts[1]) then tight = 2 end
        if allowed or back > 0 then
          for i = 1, 2 do
            levels[i] = levels[i] - granted
            redis.call('HSET', KEYS[i], 'tokens', tostring(levels[i]), 'ts', now)
            redis.call('PEXPIRE', KEYS[i], math.ceil(bursts[i] / rates[i] * 1000) + 1000)
          end
        end
        local retry = 0
        if not allowed then
          local worst = 0
          for i = 1, 2 do
            if levels[i] < 1 then worst = math.max(worst, (1 - levels[i]) / rates[i] * 1000) end
          end
          retry = math.ceil(worst)
        end
        local reset = math.ceil((bursts[tight] - levels[tight]) / rates[tight] * 1000)
        local result = { allowed and 1 or 0, bursts[tight], math.floor(levels[tight]), reset, retry, granted }
        if KEYS[3] then result[7] = redis.call('GET', KEYS[3]) end
        return result
        """;

    private readonly IConnectionMultiplexer redis;
    private readonly RedisKeyspace keyspace;
    private readonly ILogger logger;
    private readonly AdmissionLeases? leases;
    private readonly Timer? sweeper;
    private int sweeping;

    /// <summary>A limiter on <paramref name="redis"/>, with admission leases when <see cref="LimitsOptions.LeaseWindow"/> is positive.</summary>
    public RequestRateLimiter(IConnectionMultiplexer redis, RedisKeyspace keyspace, IOptions<LimitsOptions> options, ILogger<RequestRateLimiter> logger)
    {
        this.redis = redis;
        this.keyspace = keyspace;
        this.logger = logger;
        if (options.Value.LeaseWindow > TimeSpan.Zero)
        {
            leases = new AdmissionLeases(options.Value.LeaseWindow);
            // Expired leases' tokens are due back within one more window; the sweep also drops idle pairs.
            var period = TimeSpan.FromTicks(Math.Max(options.Value.LeaseWindow.Ticks, TimeSpan.FromMilliseconds(50).Ticks));
            sweeper = new Timer(static state => _ = ((RequestRateLimiter)state!).SweepAsync(all: false), this, period, period);
        }
    }

    /// <summary>This replica's leases (null when leases are off), for tests.</summary>
    internal AdmissionLeases? Leases => leases;

    /// <summary>Rate-limit scripts this limiter has run (requests', refills' and returns'), for tests and measurements.</summary>
    internal long RedisCalls => Volatile.Read(ref redisCalls);

    private long redisCalls;

    /// <summary>Takes one token from the tenant's and the key's bucket, or refuses.</summary>
    public async Task<LimitDecision> TryAcquireAsync(Guid tenantId, Guid keyId, TenantLimits limits) =>
        (await TryAcquireAsync(tenantId, keyId, limits, null)).Decision;

    /// <summary>
    /// Takes one token from the tenant's and the key's bucket, or refuses; in the same round trip reads
    /// <paramref name="counter"/> (when given), whose value (<see cref="RedisValue.Null"/> when missing or not asked for) comes back
    /// with the decision. With leases on, the token (and the counter's value) may come from this replica's lease, read from
    /// Redis up to one lease window earlier.
    /// </summary>
    public async Task<(LimitDecision Decision, RedisValue Counter)> TryAcquireAsync(Guid tenantId, Guid keyId, TenantLimits limits, RedisKey? counter)
    {
        if (leases is null)
        {
            var grant = await CallAsync(tenantId, keyId, limits, counter, asked: 1, back: 0);
            return (grant.Decision, grant.Counter);
        }
        return await AcquireLeasedAsync(leases, tenantId, keyId, limits, counter);
    }

    private async Task<(LimitDecision Decision, RedisValue Counter)> AcquireLeasedAsync(AdmissionLeases leases, Guid tenantId, Guid keyId, TenantLimits limits, RedisKey? counter)
    {
        var observed = false;
        var waited = false;
        while (true)
        {
            var lease = leases.Get(tenantId, keyId);
            var now = Stopwatch.GetTimestamp();
            // With the connection known to be down, no request is served from a lease: its own call fails at once and the
            // caller answers 503 (or lets it through, fail-open) exactly as without leases. A Redis that stops answering
            // with its connection still up is noticed by the next call's timeout; until then a lease may still serve.
            var connected = redis.IsConnected;
            LimitDecision? fromLease = null;
            RedisValue leasedCounter = RedisValue.Null;
            Task? refillUnderWay = null;
            int size, back = 0;
            var refill = false;
            RedisKey? ask;
            lock (lease)
            {
                if (lease.Evicted) continue;
                if (!observed) leases.Observe(lease, now);
                observed = true;
                if (counter is not null) lease.WantedCounter = counter;
                size = leases.Size(lease, limits);
                // Quota staleness: the counter is the usage flush's (written once a second), read with the lease, so a
                // request served from a lease checks its quota against a value up to ~1 s + one lease window old (plus
                // the refill's round trip when the lease was refilled ahead).
                ask = counter ?? lease.WantedCounter;
                if (connected && leases.TryTake(lease, now, limits, counter))
                {
                    fromLease = AdmissionLeases.Decision(lease);
                    if (counter is not null) leasedCounter = lease.Counter;
                    if (leases.ShouldRefill(lease, limits))
                    {
                        lease.Refill = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        refill = true;
                    }
                }
                else if (connected && lease.Refill is { } underWay && !waited)
                    refillUnderWay = underWay.Task;
                else
                {
                    lease.Pending++;
                    back = leases.TakeExpired(lease, now, limits);
                }
            }
            if (fromLease is not null)
            {
                if (refill) _ = RefillAsync(leases, lease, limits, size);
                return (fromLease, leasedCounter);
            }
            if (refillUnderWay is not null)
            {
                // The lease ran dry with a refill under way: wait for it once rather than add a second call.
                await refillUnderWay;
                waited = true;
                continue;
            }
            return await OwnCallAsync(leases, lease, limits, counter, ask, size, back);
        }
    }

    private async Task<(LimitDecision Decision, RedisValue Counter)> OwnCallAsync(
        AdmissionLeases leases, AdmissionLeases.Lease lease, TenantLimits limits, RedisKey? counter, RedisKey? ask, int size, int back)
    {
        Grant grant;
        try
        {
            grant = await CallAsync(lease.TenantId, lease.KeyId, limits, ask, size, back);
        }
        catch
        {
            // The given-back tokens are lost (the script may or may not have run): under-admission, never over.
            lock (lease) lease.Pending--;
            throw;
        }
        var now = Stopwatch.GetTimestamp();
        var value = counter is null ? RedisValue.Null : grant.Counter;
        lock (lease)
        {
            lease.Pending--;
            if (!grant.Decision.Allowed) return (grant.Decision, value);
            leases.Add(lease, now, limits, grant.Granted - 1, grant.Granted, grant.Decision, ask, grant.Counter);
            // One token and nothing held: Redis's own answer, exactly as with leases off.
            return (lease.Tokens == 0 ? grant.Decision : AdmissionLeases.Decision(lease), value);
        }
    }

    private async Task RefillAsync(AdmissionLeases leases, AdmissionLeases.Lease lease, TenantLimits limits, int size)
    {
        try
        {
            RedisKey? ask;
            lock (lease) ask = lease.WantedCounter;
            var grant = await CallAsync(lease.TenantId, lease.KeyId, limits, ask, size, back: 0);
            var now = Stopwatch.GetTimestamp();
            // Refused: the lease keeps what it has; the requests after it ask Redis themselves and get its 429.
            if (grant.Decision.Allowed)
                lock (lease) leases.Add(lease, now, limits, grant.Granted, grant.Granted, grant.Decision, ask, grant.Counter);
        }
        catch (Exception e)
        {
            // A request that finds the lease empty calls Redis itself and meets the failure there (503 or fail-open, as
            // without leases).
            logger.LogDebug(e, "A rate-limit lease refill failed");
        }
        finally
        {
            TaskCompletionSource done;
            lock (lease) (done, lease.Refill) = (lease.Refill!, null);
            done.SetResult();
        }
    }

    /// <summary>Gives expired leases' unused tokens back to Redis (all of them with <paramref name="all"/>); best effort.</summary>
    internal async Task SweepAsync(bool all)
    {
        if (leases is null || (Interlocked.Exchange(ref sweeping, 1) == 1 && !all)) return;
        try
        {
            var due = leases.Sweep(Stopwatch.GetTimestamp(), all);
            if (due.Count == 0) return;
            await Task.WhenAll(due.Select(async d =>
            {
                try
                {
                    await CallAsync(d.Tenant, d.Key, d.Limits, null, asked: 0, back: d.Tokens);
                }
                catch (Exception e)
                {
                    // Lost tokens: the bucket refills at its rate anyway.
                    logger.LogDebug(e, "Returning {Tokens} leased tokens to Redis failed", d.Tokens);
                }
            }));
        }
        finally
        {
            Volatile.Write(ref sweeping, 0);
        }
    }

    /// <summary>Stops the sweep and gives every lease's unused tokens back to Redis (waiting at most a second).</summary>
    public async ValueTask DisposeAsync()
    {
        if (sweeper is null) return;
        await sweeper.DisposeAsync();
        try
        {
            await SweepAsync(all: true).WaitAsync(TimeSpan.FromSeconds(1));
        }
        catch (TimeoutException)
        {
        }
    }

    /// <summary>As <see cref="DisposeAsync"/>, for a container disposed synchronously (blocks for at most a second).</summary>
    public void Dispose()
    {
        if (sweeper is null) return;
        sweeper.Dispose();
        try
        {
            SweepAsync(all: true).Wait(TimeSpan.FromSeconds(1));
        }
        catch (AggregateException)
        {
        }
    }

    private async Task<Grant> CallAsync(Guid tenantId, Guid keyId, TenantLimits limits, RedisKey? counter, int asked, int back)
    {
        Interlocked.Increment(ref redisCalls);
        RedisKey[] keys = counter is { } key
            ? [keyspace.Key($"rl:tenant:{tenantId}"), keyspace.Key($"rl:key:{keyId}"), key]
            : [keyspace.Key($"rl:tenant:{tenantId}"), keyspace.Key($"rl:key:{keyId}")];
        var result = (RedisResult[])(await redis.GetDatabase().ScriptEvaluateAsync(Script, keys,
            [limits.RequestsPerSecond, limits.Burst, limits.KeyRequestsPerSecond, limits.KeyBurst, asked, back]))!;
        var allowed = (long)result[0] == 1;
        var decision = new LimitDecision(allowed, (long)result[1], (long)result[2],
            TimeSpan.FromMilliseconds((long)result[3]), TimeSpan.FromMilliseconds((long)result[4]),
            allowed ? null : "request rate");
        return new Grant(decision, (int)(long)result[5], result.Length > 6 ? (RedisValue)result[6] : RedisValue.Null);
    }

    private readonly record struct Grant(LimitDecision Decision, int Granted, RedisValue Counter);
}
