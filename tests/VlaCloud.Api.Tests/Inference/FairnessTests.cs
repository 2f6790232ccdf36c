using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using VlaCloud.Api.Apis;
using VlaCloud.Api.Keys;
using VlaCloud.Testing;
using Xunit.Abstractions;

namespace VlaCloud.Api.Tests.Inference;

/// <summary>Fair sharing of the inference engine between tenants (issue 22).</summary>
[Collection(InferenceCollection.Name)]
public sealed class FairnessTests(ServicesFixture services, ITestOutputHelper output)
{
    [Trait("Category", "Slow")]
    [Fact]
    public async Task A_tenant_flooding_act_with_long_deadlines_gets_429_inference_share_exceeded_and_the_other_tenant_none()
    {
        await using var app = new VlaCloudAppFactory(services, new Dictionary<string, string?> { ["VlaCloud:Inference:MaxQueuedPerTenant"] = "16" });
        using var flooder = await InferenceWorld.CreateAsync(app);
        using var quiet = await InferenceWorld.CreateAsync(app);
        // Both models loaded first, so neither figure includes a load.
        Assert.Equal(HttpStatusCode.OK, (await flooder.Client.PostAsJsonAsync("/v1/act", flooder.Request(0))).StatusCode);
        var unloaded = await LatenciesAsync(quiet, 30);

        using var stop = new CancellationTokenSource();
        var floodStatuses = new ConcurrentBag<(HttpStatusCode Status, string? Code)>();
        var flood = Enumerable.Range(0, 40).Select(i => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var response = await flooder.Client.PostAsJsonAsync("/v1/act", flooder.Request(i, options: new ActOptions(Steps: 100, Seed: i, TimeoutMs: 120_000)));
                string? code = null;
                if (response.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                    code = problem.RootElement.TryGetProperty("code", out var c) ? c.GetString() : null;
                }
                floodStatuses.Add((response.StatusCode, code));
                // As a well-behaved client does: wait what Retry-After says.
                if (response.StatusCode != HttpStatusCode.OK) await Task.Delay(response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1));
            }
        })).ToList();
        var engine = app.Services.GetRequiredService<VlaCloud.Inference.InferenceEngine>();
        var tenant = (await VlaCloud.Api.Tests.Hardening.SessionClient.KeyOfAsync(app, flooder.Key)).TenantId!.Value.ToString("N");
        while (engine.TenantQueueDepth(tenant) < 16 && !floodStatuses.Any(s => s.Status == HttpStatusCode.TooManyRequests)) await Task.Delay(20);

        var loaded = await LatenciesAsync(quiet, 30);
        await stop.CancelAsync();
        await Task.WhenAll(flood);

        var refusals = floodStatuses.Count(s => s.Status == HttpStatusCode.TooManyRequests);
        output.WriteLine($"tenant B unloaded: p50 {P(unloaded, 0.5):F1} ms, p99 {P(unloaded, 0.99):F1} ms");
        output.WriteLine($"tenant B while A floods (100 steps, 120 s deadlines, 40 clients): p50 {P(loaded, 0.5):F1} ms, p99 {P(loaded, 0.99):F1} ms " +
                         $"({P(loaded, 0.99) / P(unloaded, 0.99):F2}x the unloaded p99)");
        output.WriteLine($"tenant A: {floodStatuses.Count(s => s.Status == HttpStatusCode.OK)} served, {refusals} refused with 429, " +
                         $"{floodStatuses.Count(s => s.Status == HttpStatusCode.ServiceUnavailable)} with 503");

        Assert.Contains(floodStatuses, s => s.Status == HttpStatusCode.TooManyRequests && s.Code == ActApi.ShareExceededCode);
        Assert.DoesNotContain(floodStatuses, s => s.Status == HttpStatusCode.ServiceUnavailable);
    }

    [Fact]
    public async Task A_weight_the_administrator_sets_on_one_replica_enlarges_the_tenants_share_of_a_full_queue_on_another()
    {
        // A queue of 4 that a long batching window keeps full: each tenant holds 2. The tenant of weight 3 is below its
        // share (3 of 4) and gets 503; the other, of weight 1, holds twice its share (1) and gets the 429. With the weight
        // not applied both would hold exactly their share (2) and both get the 429.
        var settings = new Dictionary<string, string?>
        {
            ["VlaCloud:Inference:QueueCapacity"] = "4", ["VlaCloud:Inference:MaxBatchSize"] = "64", ["VlaCloud:Inference:MaxQueueDelay"] = "00:00:05", ["VlaCloud:Inference:IdleDispatch"] = "false",
        };
        await using var admin = new VlaCloudAppFactory(services, settings);
        await using var app = new VlaCloudAppFactory(services, settings);
        using var heavy = await InferenceWorld.CreateAsync(admin);
        using var light = await InferenceWorld.CreateAsync(admin);
        var heavyClient = app.CreateClient(heavy.Key);
        var lightClient = app.CreateClient(light.Key);
        // The serving replica has the tenant's key cached (weight 1) before the change: the change must reach it.
        Assert.Equal(HttpStatusCode.OK, (await heavyClient.GetAsync("/v1/embodiments")).StatusCode);
        var keys = app.Services.GetRequiredService<ApiKeyCache>();
        var heard = keys.InvalidationsReceived;

        var heavyTenant = (await VlaCloud.Api.Tests.Hardening.SessionClient.KeyOfAsync(admin, heavy.Key)).TenantId!.Value;
        var operatorClient = admin.CreateClient(await admin.CreateAdminKeyAsync());
        var patched = await operatorClient.PatchAsJsonAsync($"/v1/admin/tenants/{heavyTenant}", new UpdateTenantRequest(Limits: new TenantLimitsDto(InferenceWeight: 3)));
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        Assert.Equal(3, (await patched.Content.ReadFromJsonAsync<TenantResponse>())!.Limits.InferenceWeight);
        // The invalidation travels over Redis pub/sub; the serving replica has heard it once its counter moved.
        while (keys.InvalidationsReceived == heard) await Task.Delay(10);

        var options = new ActOptions(Steps: 4, TimeoutMs: 120_000);
        var waiting = new[] { heavyClient, heavyClient, lightClient, lightClient }
            .Select((client, i) => client.PostAsJsonAsync("/v1/act", (client == heavyClient ? heavy : light).Request(i, options: options))).ToList();
        var engine = app.Services.GetRequiredService<VlaCloud.Inference.InferenceEngine>();
        while (engine.QueueDepth < 4) await Task.Delay(10);

        var heavyRefused = await heavyClient.PostAsJsonAsync("/v1/act", heavy.Request(5, options: options));
        var lightRefused = await lightClient.PostAsJsonAsync("/v1/act", light.Request(6, options: options));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, heavyRefused.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, lightRefused.StatusCode);
        Assert.Contains(ActApi.ShareExceededCode, await lightRefused.Content.ReadAsStringAsync());
        Assert.All(await Task.WhenAll(waiting), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
    }

    /// <summary>Latencies (ms) of <paramref name="count"/> sequential act requests of <paramref name="world"/>; each must succeed.</summary>
    private static async Task<List<double>> LatenciesAsync(InferenceWorld world, int count)
    {
        var latencies = new List<double>();
        for (var i = 0; i < count; i++)
        {
            var started = Stopwatch.GetTimestamp();
            var response = await world.Client.PostAsJsonAsync("/v1/act", world.Request(i % 4));
            latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"tenant B got {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
        return latencies;
    }

    private static double P(List<double> values, double quantile)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(quantile * sorted.Count) - 1)];
    }
}
