using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using StackExchange.Redis;
using VlaCloud.Registry;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Training.Jobs;

/// <summary>
/// A running job's outbox: events and progress are queued by any thread (the training thread never waits on
/// the database, nor on Redis, nor serialises JSON: a step's metrics are queued as they came and turned into an event
/// by the writer) and written by one loop with its own context, in one write per <c>flushSteps</c> metrics or per
/// <c>flushInterval</c>, whichever comes first, or at once when asked (<see cref="FlushSoon"/>: save points, evaluations;
/// the end of a run flushes itself). After a write the loop nudges live readers over Redis pub/sub without waiting for
/// Redis. Every poll interval it checks whether the job was cancelled; once the job runs, the same loop is its worker
/// heartbeat (<see cref="StartHeartbeat"/>): a trainer that finds the heartbeat stale takes the job over. Every event is
/// written, one row per step, so the metrics route and the loss curve see every step.
/// </summary>
public sealed class JobEventSink : IAsyncDisposable
{
    private readonly DbContextOptions<RegistryDbContext> dbOptions;
    private readonly Guid tenantId;
    private readonly Guid jobId;
    private readonly ISubscriber? publisher;
    private readonly RedisChannel channel;
    private readonly TimeSpan interval;
    private readonly TimeSpan flushInterval;
    private readonly int flushSteps;
    private readonly ConcurrentQueue<Queued> pending = new();
    private readonly SemaphoreSlim wake = new(0, 1);
    private int queuedMetrics;
    private DateTimeOffset nextPoll;
    private readonly CancellationTokenSource stop = new();
    private readonly CancellationTokenSource cancelled = new();
    private readonly CancellationTokenSource lost = new();
    private string? worker;
    private TimeSpan beatInterval;
    private DateTimeOffset nextBeat;
    private readonly Task loop;
    private Queued? progress;

    /// <summary>An event to write; a metrics event is described (text and JSON) by the writer, off the training thread.</summary>
    private sealed record Queued(JobEvent Event, int Step, Func<(string Text, object Data)>? Describe);

    /// <summary>
    /// Starts the writer loop for job <paramref name="jobId"/> of <paramref name="tenantId"/>: cancellation is checked every
    /// <paramref name="interval"/>; events are written every <paramref name="flushInterval"/> (default: <paramref name="interval"/>)
    /// or once <paramref name="flushSteps"/> metrics events wait, whichever comes first.
    /// </summary>
    public JobEventSink(DbContextOptions<RegistryDbContext> dbOptions, Guid tenantId, Guid jobId, IConnectionMultiplexer? redis, RedisKeyspace keyspace, TimeSpan interval,
        TimeSpan? flushInterval = null, int flushSteps = 50)
    {
        this.dbOptions = dbOptions;
        this.tenantId = tenantId;
        this.jobId = jobId;
        publisher = redis?.GetSubscriber();
        channel = Channel(keyspace, jobId);
        this.interval = interval;
        this.flushInterval = flushInterval is { } f && f > TimeSpan.Zero && f < interval ? f : interval;
        this.flushSteps = Math.Max(1, flushSteps);
        loop = Task.Run(LoopAsync);
    }

    /// <summary>The pub/sub channel that announces new events of a job (the message is the newest event id).</summary>
    public static RedisChannel Channel(RedisKeyspace keyspace, Guid jobId) => keyspace.Channel($"jobs:{jobId:N}:events");

    /// <summary>Cancelled when someone asked to cancel the job.</summary>
    public CancellationToken CancelRequested => cancelled.Token;

    /// <summary>Cancelled when another worker took the job over (this one's heartbeat was found stale).</summary>
    public CancellationToken Lost => lost.Token;

    /// <summary>
    /// Records, every <paramref name="interval"/>, that <paramref name="workerId"/> still runs the job (its
    /// <c>heartbeat_at</c>); when the job names another worker, <see cref="Lost"/> is cancelled and the beats stop.
    /// The beats come from this loop, not the training thread, so a long step never makes a live worker look dead.
    /// </summary>
    public void StartHeartbeat(string workerId, TimeSpan interval)
    {
        beatInterval = interval;
        nextBeat = DateTimeOffset.UtcNow + interval;
        worker = workerId;
    }

    /// <summary>Stops the heartbeat (the run ends; the caller says what the job's row becomes).</summary>
    public void StopHeartbeat() => worker = null;

    /// <summary>Queues a message event.</summary>
    public void Message(string text, string level = "info", object? data = null) => Add(level, "message", text, data);

    /// <summary>
    /// Queues a metrics event for <paramref name="step"/> and the job's new progress. <paramref name="describe"/> (the event's
    /// text and data) is called by the writer, not on the caller's thread.
    /// </summary>
    public void Metrics(int step, Func<(string Text, object Data)> describe)
    {
        var queued = new Queued(new JobEvent { JobId = jobId, TenantId = tenantId, Level = "info", Type = "metrics", Message = "", CreatedAt = DateTimeOffset.UtcNow }, step, describe);
        progress = queued;
        pending.Enqueue(queued);
        if (Interlocked.Increment(ref queuedMetrics) >= flushSteps) FlushSoon();
    }

    /// <summary>Queues a metrics event and the job's new progress.</summary>
    public void Metrics(int step, string text, object data) => Metrics(step, () => (text, data));

    /// <summary>Wakes the writer to write what is queued now rather than at its next interval (a save point, an evaluation).</summary>
    public void FlushSoon()
    {
        try
        {
            if (wake.CurrentCount == 0) wake.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already woken.
        }
        catch (ObjectDisposedException)
        {
            // The sink is gone; its last flush wrote everything.
        }
    }

    private void Add(string level, string type, string text, object? data) =>
        pending.Enqueue(new Queued(new JobEvent
        {
            JobId = jobId, TenantId = tenantId, Level = level, Type = type, Message = text.Length > 2000 ? text[..2000] : text,
            Data = data is null ? null : JsonSerializer.Serialize(data), CreatedAt = DateTimeOffset.UtcNow,
        }, 0, null));

    /// <summary>Describes a queued metrics event (once; the job's progress and the event share it).</summary>
    private static JobEvent Written(Queued queued)
    {
        if (queued.Describe is { } describe && queued.Event.Data is null)
        {
            var (text, data) = describe();
            queued.Event.Message = text;
            queued.Event.Data = JsonSerializer.Serialize(data);
        }
        return queued.Event;
    }

    /// <summary>Writes everything queued so far, and checks for a cancel (and beats the heartbeat) when they are due.</summary>
    public Task FlushAsync(CancellationToken cancellationToken) => FlushAsync(poll: true, cancellationToken);

    private async Task FlushAsync(bool poll, CancellationToken cancellationToken)
    {
        var batch = new List<JobEvent>();
        while (pending.TryDequeue(out var e))
        {
            batch.Add(Written(e));
            if (e.Describe is not null) Interlocked.Decrement(ref queuedMetrics);
        }
        var step = Interlocked.Exchange(ref progress, null);
        if (batch.Count == 0 && step is null && !poll) return;
        await using var db = new RegistryDbContext(dbOptions, new FixedTenantAccessor(tenantId));
        if (batch.Count > 0)
        {
            db.JobEvents.AddRange(batch);
            await db.SaveChangesAsync(cancellationToken);
        }
        if (step is { } p)
        {
            var metrics = Written(p).Data;
            await db.FineTuningJobs.Where(j => j.Id == jobId)
                .ExecuteUpdateAsync(s => s.SetProperty(j => j.Step, p.Step).SetProperty(j => j.Metrics, metrics), cancellationToken);
        }
        if (batch.Count > 0 && publisher is not null)
        {
            try
            {
                // Not awaited: live readers also poll, so a missed nudge only delays them, and the writer does not wait for Redis.
                publisher.Publish(channel, batch[^1].Id, CommandFlags.FireAndForget);
            }
            catch (RedisException)
            {
            }
        }
        if (!poll) return;
        nextPoll = DateTimeOffset.UtcNow + interval;
        if (!cancelled.IsCancellationRequested
            && await db.FineTuningJobs.AnyAsync(j => j.Id == jobId && j.CancelRequestedAt != null, cancellationToken))
            await cancelled.CancelAsync();
        if (worker is { } me && DateTimeOffset.UtcNow >= nextBeat)
        {
            var now = DateTimeOffset.UtcNow;
            var beat = await db.FineTuningJobs.Where(j => j.Id == jobId && j.WorkerId == me)
                .ExecuteUpdateAsync(s => s.SetProperty(j => j.HeartbeatAt, now), cancellationToken);
            nextBeat = now + beatInterval;
            if (beat == 0 && worker is not null)
            {
                worker = null;
                await lost.CancelAsync();
            }
        }
    }

    private async Task LoopAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await wake.WaitAsync(flushInterval, stop.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            try
            {
                await FlushAsync(poll: DateTimeOffset.UtcNow >= nextPoll, stop.Token);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // A database hiccup must not stop training; the events stay queued for the next round
                // only if they were not taken, so record the failure itself.
                Message($"could not write job events: {e.Message}", "warn");
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>Stops the loop and writes what is left.</summary>
    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        try
        {
            await loop;
        }
        catch (OperationCanceledException)
        {
        }
        await FlushAsync(CancellationToken.None);
        stop.Dispose();
        wake.Dispose();
        cancelled.Dispose();
        lost.Dispose();
    }
}
