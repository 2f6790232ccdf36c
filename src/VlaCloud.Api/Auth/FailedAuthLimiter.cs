using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using VlaCloud.Api.Hosting;

namespace VlaCloud.Api.Auth;

/// <summary>
/// Failed authentications per client address, as a token bucket per address (<see cref="VlaCloudOptions.FailedAuthPerMinute"/>
/// a minute, as a burst too). An address that spent its bucket gets 429 for any key memory cannot vouch for, so guessing
/// keys costs neither database queries nor much else; keys cached as valid still pass, so a shared address (a NAT, a
/// proxy) does not lock out its well-behaved clients. Kept per replica, in bounded memory.
/// </summary>
internal sealed class FailedAuthLimiter(IOptions<VlaCloudOptions> options, TimeProvider clock)
{
    /// <summary>Most addresses tracked at once; past it, the ones whose buckets are full again are forgotten (all, if most are not).</summary>
    public const int MaxAddresses = 100_000;

    private readonly ConcurrentDictionary<string, Bucket> buckets = new(StringComparer.Ordinal);

    private double Capacity => Math.Max(1, options.Value.FailedAuthPerMinute);

    private double PerSecond => Capacity / 60.0;

    /// <summary>How long <paramref name="address"/> must wait before it may fail again; null when it may try now.</summary>
    public TimeSpan? RetryAfter(string address)
    {
        if (!buckets.TryGetValue(address, out var bucket)) return null;
        lock (bucket)
        {
            var tokens = bucket.Level(clock.GetUtcNow(), Capacity, PerSecond);
            return tokens >= 1 ? null : TimeSpan.FromSeconds((1 - tokens) / PerSecond);
        }
    }

    /// <summary>Takes a token for a failed authentication from <paramref name="address"/>.</summary>
    public void RecordFailure(string address)
    {
        var now = clock.GetUtcNow();
        if (buckets.Count >= MaxAddresses) Prune(now);
        var bucket = buckets.GetOrAdd(address, _ => new Bucket(Capacity, now));
        lock (bucket)
        {
            bucket.Tokens = bucket.Level(now, Capacity, PerSecond) - 1;
            bucket.At = now;
        }
    }

    private void Prune(DateTimeOffset now)
    {
        lock (buckets)
        {
            if (buckets.Count < MaxAddresses) return;
            foreach (var (key, old) in buckets)
                lock (old)
                    if (old.Level(now, Capacity, PerSecond) >= Capacity) buckets.TryRemove(key, out _);
            // Failures from this many addresses at once: start over rather than scan the table at every failure.
            if (buckets.Count >= MaxAddresses / 2) buckets.Clear();
        }
    }

    private sealed class Bucket(double tokens, DateTimeOffset at)
    {
        public double Tokens { get; set; } = tokens;

        public DateTimeOffset At { get; set; } = at;

        public double Level(DateTimeOffset now, double capacity, double perSecond) =>
            Math.Min(capacity, Tokens + Math.Max(0, (now - At).TotalSeconds) * perSecond);
    }
}

/// <summary>Set on a request refused because its address failed authentication too often; the challenge answers 429.</summary>
/// <param name="RetryAfter">When the address may try again.</param>
internal sealed record AuthThrottled(TimeSpan RetryAfter);
