using StackExchange.Redis;
using VlaCloud.Registry;

namespace VlaCloud.Api.Limits;

/// <summary>
/// Token buckets in Redis, one per tenant and one per key, taken together in one Lua script so a request
/// is charged to both or to neither. Redis's own clock (<c>TIME</c>) is used, so replicas with skewed clocks
/// agree. The same script may also read a counter (the tenant's monthly compute total), so a request that is limited
/// and then checked against its quota costs one Redis round trip.
/// </summary>
public sealed class RequestRateLimiter(IConnectionMultiplexer redis, RedisKeyspace keyspace)
{
    // KEYS: tenant bucket, key bucket[, counter]. ARGV: tenant rate, tenant burst, key rate, key burst.
    // A bucket is a hash {tokens, ts_us}; missing means full. Returns
    // {allowed, limit, remaining, reset_ms, retry_ms[, counter]} for the tighter bucket; counter is the GET of KEYS[3]
    // (nil when missing) and is read only when a third key is given.
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
        local levels = { level(KEYS[1], rates[1], bursts[1]), level(KEYS[2], rates[2], bursts[2]) }
        local allowed = levels[1] >= 1 and levels[2] >= 1
        local tight = 1
        if (levels[2] / bursts[2]) < (levels[1] / bursts[1]) then tight = 2 end
        if allowed then
          for i = 1, 2 do
            levels[i] = levels[i] - 1
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
        local result = { allowed and 1 or 0, bursts[tight], math.floor(levels[tight]), reset, retry }
        if KEYS[3] then result[6] = redis.call('GET', KEYS[3]) end
        return result
        """;

    /// <summary>Takes one token from the tenant's and the key's bucket, or refuses.</summary>
    public async Task<LimitDecision> TryAcquireAsync(Guid tenantId, Guid keyId, TenantLimits limits) =>
        (await TryAcquireAsync(tenantId, keyId, limits, null)).Decision;

    /// <summary>
    /// Takes one token from the tenant's and the key's bucket, or refuses; in the same round trip reads
    /// <paramref name="counter"/> (when given), whose value (<see cref="RedisValue.Null"/> when missing or not asked for) comes back
    /// with the decision.
    /// </summary>
    public async Task<(LimitDecision Decision, RedisValue Counter)> TryAcquireAsync(Guid tenantId, Guid keyId, TenantLimits limits, RedisKey? counter)
    {
        RedisKey[] keys = counter is { } key
            ? [keyspace.Key($"rl:tenant:{tenantId}"), keyspace.Key($"rl:key:{keyId}"), key]
            : [keyspace.Key($"rl:tenant:{tenantId}"), keyspace.Key($"rl:key:{keyId}")];
        var result = (RedisResult[])(await redis.GetDatabase().ScriptEvaluateAsync(Script, keys,
            [limits.RequestsPerSecond, limits.Burst, limits.KeyRequestsPerSecond, limits.KeyBurst]))!;
        var allowed = (long)result[0] == 1;
        var decision = new LimitDecision(allowed, (long)result[1], (long)result[2],
            TimeSpan.FromMilliseconds((long)result[3]), TimeSpan.FromMilliseconds((long)result[4]),
            allowed ? null : "request rate");
        return (decision, result.Length > 5 ? (RedisValue)result[5] : RedisValue.Null);
    }
}
