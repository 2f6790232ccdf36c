using System.Collections.Concurrent;
using System.Net.WebSockets;
using Microsoft.Extensions.Options;
using VlaCloud.Registry;
using VlaCloud.Api.Keys;
using VlaCloud.Api.Limits;

namespace VlaCloud.Api.Acting;

/// <summary>Why a session is ended by the server, as a WebSocket close code and reason.</summary>
/// <param name="CloseCode">The close code (see <see cref="StreamMessages"/>).</param>
/// <param name="Reason">The close reason, for people.</param>
public sealed record SessionEnd(int CloseCode, string Reason)
{
    /// <summary>The key the session was opened with was revoked or expired.</summary>
    public static SessionEnd KeyRevoked { get; } = new(StreamMessages.KeyRevoked, "The API key was revoked or expired.");

    /// <summary>The session's stream slot is gone (its lease ran out while it could not be renewed).</summary>
    public static SessionEnd SlotLost { get; } = new(StreamMessages.TryAgainLater, "The session lost its stream slot; reconnect.");
}

/// <summary>
/// Every long-lived session of this replica (the WebSocket streams and the Server-Sent Events streams), with the key
/// that opened it. Sessions end with their key: when an invalidation for a key or tenant reaches this replica (from any
/// replica, over the key cache's pub/sub channel), the sessions it concerns are checked against the database at once
/// and those whose key was revoked or expired are ended with close code 4401. A heartbeat the server drives itself
/// renews every session's stream slot (so a slot outlives no session, and an idle session keeps its slot), ends a
/// session whose slot was lost, ends sessions whose key expired, and checks every key again, in case an invalidation
/// was missed while Redis was away.
/// </summary>
public sealed class LiveSessions : BackgroundService
{
    private readonly ConcurrentDictionary<LiveSession, byte> sessions = new();
    private readonly IServiceScopeFactory scopes;
    private readonly ApiKeyCache keys;
    private readonly IOptions<LimitsOptions> limits;
    private readonly TimeProvider clock;
    private readonly ILogger<LiveSessions> logger;

    /// <summary>Creates the registry and listens to key invalidations.</summary>
    public LiveSessions(IServiceScopeFactory scopes, ApiKeyCache keys, IOptions<LimitsOptions> limits, TimeProvider clock, ILogger<LiveSessions> logger)
    {
        this.scopes = scopes;
        this.keys = keys;
        this.limits = limits;
        this.clock = clock;
        this.logger = logger;
        keys.Invalidated += OnInvalidated;
    }

    /// <summary>Sessions open now.</summary>
    public int Count => sessions.Count;

    /// <summary>
    /// Registers a session opened with <paramref name="key"/> (holding <paramref name="slot"/>, if any); <paramref name="end"/>
    /// ends it (once) when the server must. Dispose the result when the session is over.
    /// </summary>
    public LiveSession Open(ApiKeyIdentity key, StreamSlot? slot, Func<SessionEnd, Task> end)
    {
        var session = new LiveSession(this, key, slot, end, logger);
        sessions[session] = 0;
        return session;
    }

    internal void Close(LiveSession session) => sessions.TryRemove(session, out _);

    /// <summary>How often the heartbeat runs: a third of the slot lease, so two beats may fail before a slot lapses.</summary>
    public TimeSpan HeartbeatInterval => TimeSpan.FromMilliseconds(Math.Max(100, limits.Value.StreamSlotLease.TotalMilliseconds / 3));

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await Task.Delay(HeartbeatInterval, clock, stoppingToken);
                await BeatAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>One heartbeat: renew every slot, end sessions whose slot or key is gone.</summary>
    public async Task BeatAsync(CancellationToken cancellationToken)
    {
        var open = sessions.Keys.ToList();
        if (open.Count == 0) return;
        var now = clock.GetUtcNow();
        await Task.WhenAll(open.Select(async session =>
        {
            if (session.Key.ExpiresAt is { } expires && expires <= now)
            {
                await session.EndAsync(SessionEnd.KeyRevoked);
                return;
            }
            if (session.Slot is not { } slot) return;
            try
            {
                if (!await slot.RenewAsync()) await session.EndAsync(SessionEnd.SlotLost);
            }
            catch (Exception e) when (DependencyFailure.IsUnavailable(e))
            {
                // Redis is away: the lease still runs, and the next beat tries again.
            }
        }));
        await CheckKeysAsync(open, cancellationToken);
    }

    private void OnInvalidated(KeyInvalidation invalidation)
    {
        var concerned = sessions.Keys.Where(s => invalidation.Concerns(s.Key)).ToList();
        if (concerned.Count == 0) return;
        // Off the Redis callback thread: the check reads the database.
        _ = Task.Run(() => CheckKeysAsync(concerned, CancellationToken.None));
    }

    /// <summary>Ends those of <paramref name="candidates"/> whose key is no longer active (one query for all).</summary>
    private async Task CheckKeysAsync(IReadOnlyList<LiveSession> candidates, CancellationToken cancellationToken)
    {
        try
        {
            IReadOnlySet<Guid> active;
            await using (var scope = scopes.CreateAsyncScope())
                active = await scope.ServiceProvider.GetRequiredService<ApiKeyLookup>()
                    .ActiveAmongAsync([.. candidates.Select(s => s.Key.KeyId).Distinct()], clock.GetUtcNow(), cancellationToken);
            await Task.WhenAll(candidates.Where(s => !active.Contains(s.Key.KeyId)).Select(s => s.EndAsync(SessionEnd.KeyRevoked)));
        }
        catch (Exception e) when (DependencyFailure.IsUnavailable(e))
        {
            // Postgres is away: open sessions go on (their keys were valid), and the next heartbeat checks again.
            logger.LogWarning("Could not check the keys of {Count} open session(s): {Reason}", candidates.Count, e.GetBaseException().Message);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogError(e, "Checking the keys of open sessions failed");
        }
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        keys.Invalidated -= OnInvalidated;
        base.Dispose();
    }
}

/// <summary>One registered session; dispose it when the session is over.</summary>
public sealed class LiveSession : IDisposable
{
    private readonly LiveSessions owner;
    private readonly Func<SessionEnd, Task> end;
    private readonly ILogger logger;
    private readonly CancellationTokenSource ended = new();
    private int ending;

    internal LiveSession(LiveSessions owner, ApiKeyIdentity key, StreamSlot? slot, Func<SessionEnd, Task> end, ILogger logger)
    {
        this.owner = owner;
        this.end = end;
        this.logger = logger;
        Key = key;
        Slot = slot;
    }

    /// <summary>The key that opened the session.</summary>
    public ApiKeyIdentity Key { get; }

    /// <summary>Its stream slot, if it holds one.</summary>
    public StreamSlot? Slot { get; }

    /// <summary>Why the server ended it, once it did.</summary>
    public SessionEnd? EndedBecause { get; private set; }

    /// <summary>Cancelled when the server ends the session.</summary>
    public CancellationToken Ended => ended.Token;

    /// <summary>Ends the session for <paramref name="reason"/> (the first call wins; nothing after the session is over).</summary>
    public async Task EndAsync(SessionEnd reason)
    {
        if (Interlocked.Exchange(ref ending, 1) == 1) return;
        EndedBecause = reason;
        logger.LogInformation("Ending a session of key {KeyId}: {Reason}", Key.KeyId, reason.Reason);
        try
        {
            await end(reason);
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException or InvalidOperationException or IOException)
        {
            // The session was already going away.
        }
        finally
        {
            await ended.CancelAsync();
        }
    }

    /// <inheritdoc />
    /// <remarks>The token source is left to the collector: a heartbeat may be ending the session at this moment.</remarks>
    public void Dispose()
    {
        Interlocked.Exchange(ref ending, 1);
        owner.Close(this);
    }
}
