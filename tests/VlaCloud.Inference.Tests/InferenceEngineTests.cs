using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using VlaCloud.Policy;

namespace VlaCloud.Inference.Tests;

public sealed class InferenceEngineTests(TinyCheckpoints checkpoints) : IClassFixture<TinyCheckpoints>
{
    private InferenceEngine Engine(Action<InferenceOptions>? configure = null)
    {
        var options = new InferenceOptions { Devices = ["cpu"], MaxQueueDelay = TimeSpan.FromMilliseconds(20), IdleDispatch = false };
        configure?.Invoke(options);
        return new InferenceEngine(Options.Create(options), new DirectoryCheckpointSource(checkpoints.Root), NullLoggerFactory.Instance);
    }

    private static InferenceRequest Request(string checkpoint, int variant, TimeSpan? timeout = null, SpatialKind? spatial = null) =>
        new(checkpoint, TinyCheckpoints.Observation(variant), Seed: 100 + variant, Steps: 4, spatial,
            DateTimeOffset.UtcNow + (timeout ?? TimeSpan.FromSeconds(60)));

    [Fact]
    public async Task Concurrent_requests_are_batched_and_each_gets_its_own_unbatched_result()
    {
        using var engine = Engine(o => o.MaxQueueDelay = TimeSpan.FromMilliseconds(200));
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(v => engine.RunAsync(Request("a", v), CancellationToken.None)));

        Assert.Contains(results, r => r.BatchSize > 1);
        using var reference = checkpoints.Load("a");
        for (var v = 0; v < 8; v++)
        {
            var alone = reference.SampleActions(TinyCheckpoints.Observation(v), 100 + v, steps: 4);
            Assert.Equal(alone.Horizon, results[v].Actions.Horizon);
            Assert.Equal(TinyCheckpoints.ActionDim, results[v].Actions.ActionDim);
            foreach (var (batched, single) in results[v].Actions.Values.ToArray().Zip(alone.Values.ToArray()))
                Assert.Equal(single, batched, 4);
        }
    }

    [Fact]
    public async Task A_sessions_unchanged_observation_reuses_its_prefix_and_gives_the_same_actions()
    {
        using var engine = Engine(o => o.IdleDispatch = true);
        var request = Request("a", 3) with { Session = "tenant/connection-1" };
        var miss = await engine.RunAsync(request, CancellationToken.None);
        Assert.Equal(0, Assert.Single(engine.CacheStats).PrefixHits);
        var hit = await engine.RunAsync(request, CancellationToken.None);
        Assert.Equal(1, Assert.Single(engine.CacheStats).PrefixHits);
        Assert.Equal(miss.Actions, hit.Actions);
        // Another observation in the same session misses; a request without a session never hits.
        await engine.RunAsync(Request("a", 4) with { Session = "tenant/connection-1" }, CancellationToken.None);
        await engine.RunAsync(Request("a", 4), CancellationToken.None);
        Assert.Equal(1, Assert.Single(engine.CacheStats).PrefixHits);
    }

    [Fact]
    public async Task Zero_session_prefixes_turns_the_cache_off()
    {
        using var engine = Engine(o => { o.IdleDispatch = true; o.SessionPrefixes = 0; });
        var request = Request("a", 3) with { Session = "tenant/connection-1" };
        for (var i = 0; i < 3; i++) await engine.RunAsync(request, CancellationToken.None);
        Assert.Equal(0, Assert.Single(engine.CacheStats).PrefixHits);
    }

    [Fact]
    public async Task Requests_for_different_checkpoints_are_never_mixed_in_one_batch()
    {
        using var engine = Engine(o => o.MaxQueueDelay = TimeSpan.FromMilliseconds(100));
        var tasks = Enumerable.Range(0, 6).Select(v => engine.RunAsync(Request(v % 2 == 0 ? "a" : "b", v), CancellationToken.None)).ToList();
        var results = await Task.WhenAll(tasks);

        using var a = checkpoints.Load("a");
        using var b = checkpoints.Load("b");
        for (var v = 0; v < 6; v++)
        {
            var expected = (v % 2 == 0 ? a : b).SampleActions(TinyCheckpoints.Observation(v), 100 + v, steps: 4);
            Assert.Equal(expected[0, 0], results[v].Actions[0, 0], 4);
            Assert.InRange(results[v].BatchSize, 1, 3);
        }
    }

    [Fact]
    public async Task A_full_queue_refuses_at_once_and_keeps_the_waiting_requests()
    {
        // A long queue delay and a large batch keep the first two requests waiting in the queue.
        using var engine = Engine(o => { o.QueueCapacity = 2; o.MaxBatchSize = 64; o.MaxQueueDelay = TimeSpan.FromSeconds(3); });
        var waiting = new[] { engine.RunAsync(Request("a", 0), CancellationToken.None), engine.RunAsync(Request("a", 1), CancellationToken.None) };
        while (engine.QueueDepth < 2) await Task.Delay(10);

        var refused = engine.RunAsync(Request("a", 2), CancellationToken.None);
        Assert.True(refused.IsCompleted, "a full queue must answer without waiting");
        var busy = await Assert.ThrowsAsync<EngineBusyException>(() => refused);
        Assert.True(busy.RetryAfter > TimeSpan.Zero);

        var served = await Task.WhenAll(waiting);
        Assert.All(served, r => Assert.Equal(2, r.BatchSize));
    }

    [Fact]
    public async Task Batches_by_size_counts_the_batches_the_worker_formed()
    {
        using var engine = Engine(o => { o.MaxBatchSize = 4; o.MaxQueueDelay = TimeSpan.FromSeconds(3); });
        Assert.Equal(new long[5], engine.BatchesBySize);
        // Four requests fill a batch at once (no waiting for the window); then a lone one waits out the window alone.
        await Task.WhenAll(Enumerable.Range(0, 4).Select(v => engine.RunAsync(Request("a", v), CancellationToken.None)));
        var counts = engine.BatchesBySize;
        Assert.Equal(4, counts.Select((count, size) => count * size).Sum());
        using var shortWindow = Engine(o => { o.MaxBatchSize = 4; o.MaxQueueDelay = TimeSpan.FromMilliseconds(1); });
        await shortWindow.RunAsync(Request("a", 0), CancellationToken.None);
        Assert.Equal(new long[] { 0, 1, 0, 0, 0 }, shortWindow.BatchesBySize);
    }

    [Fact]
    public async Task A_request_whose_deadline_passes_in_the_queue_is_never_computed()
    {
        using var engine = Engine(o => { o.MaxBatchSize = 64; o.MaxQueueDelay = TimeSpan.FromMilliseconds(800); });
        // Load the model first, so the deadline runs out in the queue rather than during the load.
        await engine.RunAsync(Request("a", 0), CancellationToken.None);
        var computedBefore = engine.ComputedRequests;

        await Assert.ThrowsAsync<DeadlineExceededException>(() => engine.RunAsync(Request("a", 1, timeout: TimeSpan.FromMilliseconds(100)), CancellationToken.None));

        var later = await engine.RunAsync(Request("a", 2), CancellationToken.None);
        Assert.Equal(1, later.BatchSize);
        Assert.Equal(computedBefore + 1, engine.ComputedRequests);
    }

    [Fact]
    public async Task A_cancelled_request_is_not_computed()
    {
        // A long batching window and a cancel issued once the request is queued: a timer-based cancel could fire
        // after the window on a loaded machine, and then the request would (rightly) have been computed.
        using var engine = Engine(o => { o.MaxBatchSize = 64; o.MaxQueueDelay = TimeSpan.FromSeconds(3); });
        await engine.RunAsync(Request("a", 0), CancellationToken.None);
        var computedBefore = engine.ComputedRequests;

        using var cancel = new CancellationTokenSource();
        var cancelled = engine.RunAsync(Request("a", 1), cancel.Token);
        while (engine.QueueDepth < 1) await Task.Delay(5);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        await engine.RunAsync(Request("a", 2), CancellationToken.None);
        Assert.Equal(computedBefore + 1, engine.ComputedRequests);
        Assert.Equal(0, engine.QueueDepth);
    }

    [Fact]
    public async Task Many_first_requests_for_one_checkpoint_load_it_once()
    {
        using var engine = Engine();
        await Task.WhenAll(Enumerable.Range(0, 10).Select(v => engine.RunAsync(Request("b", v), CancellationToken.None)));
        var stats = Assert.Single(engine.CacheStats);
        Assert.Equal((1, 1, 9), (stats.Loads, stats.Misses, stats.Hits));
        Assert.Equal(1, stats.Models);
    }

    [Fact]
    public async Task A_memory_budget_for_one_model_evicts_the_least_recently_used_and_reloads_it_on_demand()
    {
        using var probe = checkpoints.Load("a");
        var oneModel = probe.ParameterCount * 4;
        using var engine = Engine(o => o.ModelMemoryBudgetBytes = oneModel + oneModel / 2);

        var first = await engine.RunAsync(Request("a", 0), CancellationToken.None);
        await engine.RunAsync(Request("b", 1), CancellationToken.None);
        var again = await engine.RunAsync(Request("a", 0), CancellationToken.None);

        var stats = Assert.Single(engine.CacheStats);
        Assert.Equal(1, stats.Models);
        Assert.Equal(3, stats.Loads);
        Assert.Equal(2, stats.Evictions);
        Assert.Equal(first.Actions.Values.ToArray(), again.Actions.Values.ToArray());
    }

    [Fact]
    public async Task A_missing_checkpoint_fails_with_a_load_error_and_is_retried_after_the_delay_not_on_the_next_request()
    {
        using var engine = Engine(o => o.FailedLoadRetryAfter = TimeSpan.FromSeconds(2));
        var error = await Assert.ThrowsAsync<ModelLoadException>(() => engine.RunAsync(Request("missing", 0), CancellationToken.None));
        Assert.Contains("missing", error.Message);
        await Assert.ThrowsAsync<ModelLoadException>(() => engine.RunAsync(Request("missing", 0), CancellationToken.None));
        Assert.Equal((1L, 1L), (Assert.Single(engine.CacheStats).Misses, engine.CacheStats[0].Refused));

        await Task.Delay(TimeSpan.FromSeconds(2.2));
        await Assert.ThrowsAsync<ModelLoadException>(() => engine.RunAsync(Request("missing", 0), CancellationToken.None));
        Assert.Equal(2, Assert.Single(engine.CacheStats).Misses);
    }

    [Fact]
    public async Task Spatial_answers_come_back_with_the_actions_when_asked()
    {
        using var engine = Engine();
        var result = await engine.RunAsync(Request("a", 3, spatial: SpatialKind.Box), CancellationToken.None);
        Assert.NotNull(result.Spatial);
        Assert.Equal(SpatialKind.Box, result.Spatial!.Kind);
        Assert.Equal(4, result.Spatial.Coordinates.Length);
        Assert.All(result.Spatial.Coordinates, c => Assert.InRange(c, 0, PolicyConfig.Tiny.ImageSize));
    }

    [Fact]
    public async Task Live_tensors_stay_flat_over_many_served_requests()
    {
        using var engine = Engine(o => o.MaxQueueDelay = TimeSpan.FromMilliseconds(1));
        await engine.RunAsync(Request("a", 0), CancellationToken.None);
        var before = engine.LiveTensors;
        for (var round = 0; round < 25; round++)
            await Task.WhenAll(Enumerable.Range(0, 8).Select(v => engine.RunAsync(Request("a", v), CancellationToken.None)));
        Assert.Equal(before, engine.LiveTensors);
    }

    [Fact]
    public async Task An_idle_engine_dispatches_a_lone_request_without_waiting_for_the_window_and_still_batches_under_load()
    {
        // A window far longer than a tiny forward: a request it held would report a queue time of at least the window.
        var window = TimeSpan.FromSeconds(5);
        using var engine = Engine(o => { o.IdleDispatch = true; o.MaxBatchSize = 8; o.MaxQueueDelay = window; });
        var lone = await engine.RunAsync(Request("a", 0), CancellationToken.None);
        Assert.Equal(1, lone.BatchSize);
        Assert.True(lone.QueueTime < window, $"queue time {lone.QueueTime}");
        var again = await engine.RunAsync(Request("a", 1), CancellationToken.None);
        Assert.Equal(1, again.BatchSize);
        Assert.True(again.QueueTime < window, $"queue time {again.QueueTime}");

        // Load: nine requests at once. The first goes alone (the engine was idle); the others queue behind it and, as more
        // than one waits, are batched as before (a full batch of eight is dispatched without waiting out the window).
        var results = await Task.WhenAll(Enumerable.Range(0, 9).Select(v => engine.RunAsync(Request("a", v), CancellationToken.None)));
        Assert.Contains(results, r => r.BatchSize > 1);
    }
}
