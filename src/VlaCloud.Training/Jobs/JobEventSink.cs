using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using StackExchange.Redis;
using VlaCloud.Registry;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Training.Jobs;

/// <summary>
/// A running job's outbox: events and progress are queued by any thread (the training thread never waits on
/// the database) and written every poll interval by one loop with its own context, which then nudges live
/// readers over Redis pub/sub and checks whether the job was cancelled. Once the job runs, the same loop is its
/// worker heartbeat (<see cref="StartHeartbeat"/>): a trainer that finds the heartbeat stale takes the job over.
/// </summary>
public sealed class JobEventSink : IAsyncDisposable
{
    private readonly DbContextOptions<RegistryDbContext> dbOptions;
    private readonly Guid tenantId;
    private readonly Guid jobId;
    private readonly ISubscriber? publisher;
    private readonly RedisChannel channel;
    private readonly TimeSpan interval;
    private readonly ConcurrentQueue<JobEvent> pending = new();
    private readonly CancellationTokenSource stop = new();
    private readonly CancellationTokenSource cancelled = new();
    private readonly CancellationTokenSource lost = new();
    private string? worker;
    private TimeSpan beatInterval;
    private DateTimeOffset nextBeat;
    private readonly Task loop;
    private (int Step, string Metrics)? progress;

    /// <summary>Starts the writer loop for job <paramref name="jobId"/> of <paramref name="tenantId"/>.</summary>
    public JobEventSink(DbContextOptions<RegistryDbContext> dbOptions, Guid tenantId, Guid jobId, IConnectionMultiplexer? redis, RedisKeyspace keyspace, TimeSpan interval)
    {
        this.dbOptions = dbOptions;
        this.tenantId = tenantId;
        this.jobId = jobId;
        publisher = redis?.GetSubscriber();
        channel = Channel(keyspace, jobId);
        this.interval = interval;
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

    /// <summary>Queues a metrics event and the job's new progress.</summary>
    public void Metrics(int step, string text, object data)
    {
        var json = JsonSerializer.Serialize(data);
        progress = (step, json);
        pending.Enqueue(new JobEvent { JobId = jobId, TenantId = tenantId, Level = "info", Type = "metrics", Message = text, Data = json, CreatedAt = DateTimeOffset.UtcNow });
    }

    private void Add(string level, string type, string text, object? data) =>
        pending.Enqueue(new JobEvent
        {
            JobId = jobId, TenantId = tenantId, Level = level, Type = type, Message = text.Length > 2000 ? text[..2000] : text,
            Data = data is null ? null : JsonSerializer.Serialize(data), CreatedAt = DateTimeOffset.UtcNow,
        });

    /// <summary>Writes everything queued so far.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        var batch = new List<JobEvent>();
        while (pending.TryDequeue(out var e)) batch.Add(e);
        var step = progress;
        progress = null;
        await using var db = new RegistryDbContext(dbOptions, new FixedTenantAccessor(tenantId));
        if (batch.Count > 0)
        {
            db.JobEvents.AddRange(batch);
            await db.SaveChangesAsync(cancellationToken);
        }
        if (step is { } p)
        {
            await db.FineTuningJobs.Where(j => j.Id == jobId)
                .ExecuteUpdateAsync(s => s.SetProperty(j => j.Step, p.Step).SetProperty(j => j.Metrics, p.Metrics), cancellationToken);
        }
        if (batch.Count > 0 && publisher is not null)
        {
            try
            {
                await publisher.PublishAsync(channel, batch[^1].Id);
            }
            catch (RedisException)
            {
                // Live readers also poll; a missed nudge only delays them.
            }
        }
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
                await Task.Delay(interval, stop.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            try
            {
                await FlushAsync(stop.Token);
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
        cancelled.Dispose();
        lost.Dispose();
    }
}
