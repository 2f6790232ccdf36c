using Npgsql;
using StackExchange.Redis;

namespace VlaCloud.Registry;

/// <summary>
/// Tells a dependency that does not answer (Postgres or Redis down, unreachable, restarting, timing out) from a
/// bug: the first is worth a 503 with <c>Retry-After</c> and a retry, the second is a 500.
/// </summary>
public static class DependencyFailure
{
    /// <summary>Name of the registry database in messages.</summary>
    public const string Postgres = "Postgres";

    /// <summary>Name of the cache and limit store in messages.</summary>
    public const string Redis = "Redis";

    /// <summary>
    /// The dependency that did not answer, if <paramref name="exception"/> (or one it wraps, as EF Core and Hangfire
    /// do) says so; null for any other failure.
    /// </summary>
    public static string? Of(Exception exception)
    {
        for (Exception? e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case NpgsqlException { IsTransient: true }:
                    return Postgres;
                case RedisConnectionException or RedisTimeoutException:
                    return Redis;
                case AggregateException aggregate when aggregate.InnerExceptions.Select(Of).FirstOrDefault(d => d is not null) is { } inner:
                    return inner;
            }
        }
        return null;
    }

    /// <summary>Whether <paramref name="exception"/> is a dependency that did not answer.</summary>
    public static bool IsUnavailable(Exception exception) => Of(exception) is not null;
}
