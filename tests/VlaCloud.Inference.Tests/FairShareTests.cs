using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace VlaCloud.Inference.Tests;

/// <summary>Per-tenant fairness of the inference engine: its bounded per-tenant queue and weighted fair batching (issue 22).</summary>
public sealed class FairShareTests(TinyCheckpoints checkpoints) : IClassFixture<TinyCheckpoints>
{
    private InferenceEngine Engine(Action<InferenceOptions> configure)
    {
        var options = new InferenceOptions { Devices = ["cpu"], IdleDispatch = false }; // the tests rely on the window holding a lone request
        configure(options);
        return new InferenceEngine(Options.Create(options), new DirectoryCheckpointSource(checkpoints.Root), NullLoggerFactory.Instance);
    }

    private static InferenceRequest Request(string tenant, int variant, int? steps = 4, double weight = 1, DateTimeOffset? deadline = null) =>
        new("a", TinyCheckpoints.Observation(variant), Seed: variant, Steps: steps, Spatial: null,
            deadline ?? DateTimeOffset.UtcNow + TimeSpan.FromMinutes(2), Tenant: tenant, Weight: weight);

    [Fact]
    public async Task A_tenant_past_its_queue_share_is_refused_alone_and_other_tenants_are_still_queued()
    {
        // A long batching window and a large batch keep requests waiting in the queue.
        using var engine = Engine(o => { o.MaxQueuedPerTenant = 2; o.MaxBatchSize = 64; o.MaxQueueDelay = TimeSpan.FromSeconds(3); });
        var flooding = new[] { engine.RunAsync(Request("flood", 0), CancellationToken.None), engine.RunAsync(Request("flood", 1), CancellationToken.None) };
        while (engine.TenantQueueDepth("flood") < 2) await Task.Delay(10);

        var refused = engine.RunAsync(Request("flood", 2), CancellationToken.None);
        Assert.True(refused.IsCompleted, "a tenant over its share must be answered without waiting");
        var over = await Assert.ThrowsAsync<TenantShareExceededException>(() => refused);
        Assert.Equal((2, 2), (over.Queued, over.Share));
        Assert.True(over.RetryAfter > TimeSpan.Zero);

        var other = engine.RunAsync(Request("quiet", 3), CancellationToken.None);
        Assert.All(await Task.WhenAll([.. flooding, other]), r => Assert.Equal(3, r.BatchSize));
        Assert.Equal(0, engine.QueueDepth);
    }

    [Fact]
    public async Task In_a_full_queue_the_tenant_holding_more_than_its_share_gets_the_refusal_and_not_the_one_below_it()
    {
        using var engine = Engine(o => { o.QueueCapacity = 4; o.MaxQueuedPerTenant = 4; o.MaxBatchSize = 64; o.MaxQueueDelay = TimeSpan.FromSeconds(3); });
        var waiting = Enumerable.Range(0, 3).Select(v => engine.RunAsync(Request("big", v), CancellationToken.None)).ToList();
        waiting.Add(engine.RunAsync(Request("small", 3), CancellationToken.None));
        while (engine.QueueDepth < 4) await Task.Delay(10);

        // Full: "big" holds 3 of 4 (its share of two equal tenants is 2), "small" holds 1.
        await Assert.ThrowsAsync<TenantShareExceededException>(() => engine.RunAsync(Request("big", 4), CancellationToken.None));
        await Assert.ThrowsAsync<EngineBusyException>(() => engine.RunAsync(Request("small", 5), CancellationToken.None));
        await Task.WhenAll(waiting);
    }

    [Fact]
    public void Each_batch_is_shared_between_the_tenants_waiting_for_its_model_by_weight()
    {
        var fair = new FairShare(new InferenceOptions { MaxBatchSize = 6 });
        var soon = DateTimeOffset.UtcNow;
        // The flooding tenant's requests are older and due sooner: earliest-deadline batching alone would give it the whole batch.
        var pending = Enumerable.Range(0, 10).Select(i => Item(Request("flood", i, deadline: soon.AddSeconds(i))))
            .Concat(Enumerable.Range(0, 3).Select(i => Item(Request("light", i, deadline: soon.AddMinutes(1)))))
            .Concat(Enumerable.Range(0, 6).Select(i => Item(Request("heavy", i, weight: 2, deadline: soon.AddMinutes(1)))))
            .ToList();

        var batch = fair.TakeBatch(pending);

        // Weights 1, 1, 2 of 6 slots: 1, 1 and 3, and the slot left over goes to the earliest deadline (the flood's next).
        Assert.Equal(6, batch.Count);
        Assert.Equal(2, batch.Count(i => i.Request.Tenant == "flood"));
        Assert.Equal(1, batch.Count(i => i.Request.Tenant == "light"));
        Assert.Equal(3, batch.Count(i => i.Request.Tenant == "heavy"));
        Assert.Equal([0, 1], batch.Where(i => i.Request.Tenant == "flood").Select(i => (int)i.Request.Seed));
    }

    [Fact]
    public void The_tenant_that_was_served_least_for_its_weight_goes_first_even_with_later_deadlines_and_costlier_steps_count_more()
    {
        var fair = new FairShare(new InferenceOptions { MaxBatchSize = 4 });
        var soon = DateTimeOffset.UtcNow;
        var pending = Enumerable.Range(0, 8).Select(i => Item(Request("flood", i, steps: 100, deadline: soon.AddSeconds(i)))).ToList();
        pending.Add(Item(Request("quiet", 0, steps: 10, deadline: soon.AddMinutes(1))));

        // First batch: the flood's (its deadline is earliest, neither tenant has been served); the quiet tenant's steps differ.
        // 4 × 10 steps is the batch's budget, so it holds one 100-step request.
        var first = fair.TakeBatch(pending);
        Assert.Equal("flood", Assert.Single(first).Request.Tenant);
        pending.RemoveAll(first.Contains);

        // The flood was charged its 100 steps per request: the quiet tenant goes next although the flood's deadlines are earlier.
        var second = fair.TakeBatch(pending);
        Assert.Equal("quiet", Assert.Single(second).Request.Tenant);
        pending.RemoveAll(second.Contains);

        // A new quiet request, cheaper than the flood's, is served before the rest of the flood again.
        pending.Add(Item(Request("quiet", 1, steps: 10, deadline: soon.AddMinutes(1))));
        Assert.Equal("quiet", Assert.Single(fair.TakeBatch(pending)).Request.Tenant);
    }

    [Fact]
    public async Task A_short_request_arriving_while_a_long_one_denoises_starts_between_its_steps_and_finishes_first()
    {
        using var engine = Engine(o => o.MaxQueueDelay = TimeSpan.Zero);
        // Warm the model so the long request starts denoising at once.
        await engine.RunAsync(Request("long", 0, steps: 1), CancellationToken.None);
        var alone = await engine.RunAsync(Request("short", 1, steps: 4), CancellationToken.None);

        var longRequest = engine.RunAsync(Request("long", 2, steps: 2000), CancellationToken.None);
        while (engine.QueueDepth > 0) await Task.Delay(1);
        var shortResult = await engine.RunAsync(Request("short", 1, steps: 4), CancellationToken.None);

        // Before slicing, the short request waited for all 2000 steps of the batch in progress.
        Assert.False(longRequest.IsCompleted, "the short request finished only after the long one's remaining steps");
        Assert.Equal(alone.Actions.Values.ToArray(), shortResult.Actions.Values.ToArray());
        Assert.Equal(1, (await longRequest).BatchSize);
    }

    private static WorkItem Item(InferenceRequest request) => new(request, null!, System.Diagnostics.Stopwatch.GetTimestamp(), default);
}
