using StackExchange.Redis;

namespace VlaCloud.Registry;

/// <summary>
/// Names every Redis key and channel with the deployment's prefix, so deployments (and parallel test
/// collections) can share one Redis.
/// </summary>
/// <param name="Prefix">The prefix, e.g. <c>vlacloud:</c>.</param>
public sealed record RedisKeyspace(string Prefix)
{
    /// <summary>A key under the prefix.</summary>
    public RedisKey Key(string name) => new(Prefix + name);

    /// <summary>A pub/sub channel under the prefix.</summary>
    public RedisChannel Channel(string name) => RedisChannel.Literal(Prefix + name);
}
