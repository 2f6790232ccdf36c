using System.Collections.Concurrent;
using VlaCloud.Api.Usage;

namespace VlaCloud.Api.Acting;

/// <summary>
/// Adds up inference usage in memory and writes it to the registry once a second (and on shutdown), so
/// metering costs a request a dictionary update instead of a database round trip on the hot path.
/// </summary>
public sealed class UsageBuffer(IServiceScopeFactory scopes, ILogger<UsageBuffer> logger) : BackgroundService
{
    private ConcurrentDictionary<(Guid Tenant, Guid Checkpoint), UsageRecord> pending = new();

    /// <summary>How often the buffer is written.</summary>
    public static readonly TimeSpan FlushInterval = TimeSpan.FromSeconds(1);

    /// <summary>Adds one request's usage.</summary>
    public void Add(UsageRecord usage) =>
        pending.AddOrUpdate((usage.TenantId, usage.CheckpointId), usage,
            (_, sum) => sum with { Requests = sum.Requests + usage.Requests, Actions = sum.Actions + usage.Actions, ComputeMs = sum.ComputeMs + usage.ComputeMs });

    /// <summary>Writes what has accumulated.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        var batch = Interlocked.Exchange(ref pending, new ConcurrentDictionary<(Guid, Guid), UsageRecord>());
        if (batch.IsEmpty) return;
        await using var scope = scopes.CreateAsyncScope();
        var meter = scope.ServiceProvider.GetRequiredService<IUsageMeter>();
        foreach (var record in batch.Values)
        {
            try
            {
                await meter.RecordAsync(record, cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Usage must not be lost to a passing database error: put it back for the next flush.
                Add(record);
                logger.LogWarning(e, "Writing usage of tenant {Tenant} failed; retrying at the next flush", record.TenantId);
            }
        }
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(FlushInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken)) await FlushAsync(stoppingToken);
        }
        catch (OperationCanceledException)
        {
        }
        await FlushAsync(CancellationToken.None);
    }
}
