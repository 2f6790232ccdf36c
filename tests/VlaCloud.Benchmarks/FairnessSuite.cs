using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using VlaCloud.Contracts;
using VlaCloud.Policy;

namespace VlaCloud.Benchmarks;

/// <summary>
/// Fair sharing between tenants on the real host (issue 22): tenant B sends ordinary <c>/v1/act</c> requests one after
/// another, unloaded, then while tenant A floods <c>act</c> from many clients with 100-step requests and 120 s deadlines,
/// then unloaded again (both unloaded runs make the baseline, so a drift in the machine's load is shared). Prints B's
/// p50/p99 in each phase, the loaded p99 over the unloaded p99, and what A and B were answered; fails if B got any
/// refusal or A got a 503 instead of its 429.
/// </summary>
internal sealed class FairnessSuite : IBenchmarkSuite
{
    public string Name => "fairness";

    public string Description => "tenant B's act p99 unloaded vs while tenant A floods 100-step, 120 s-deadline requests (loaded_over_unloaded_p99); A's 429s, B's refusals";

    public async Task RunAsync(Report report, string[] args, CancellationToken cancellationToken)
    {
        var requests = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 60;
        var clients = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 40;
        await using var environment = await BenchmarkEnvironment.CreateAsync();
        using var policy = VlaPolicy.Create(PolicyConfig.Tiny, new Dictionary<string, NormalizationStats> { [ServingSuite.Embodiment] = ServingSuite.Stats() }, seed: 3);
        await using var host = await environment.StartHostAsync(new Dictionary<string, string?> { ["VlaCloud:Inference:MaxQueuedPerTenant"] = "16" }, cancellationToken);
        using var a = host.CreateClient(await host.CreateTenantAsync());
        using var b = host.CreateClient(await host.CreateTenantAsync());
        var modelA = await ServingSuite.RegisterAsync(a, policy);
        var modelB = await ServingSuite.RegisterAsync(b, policy);
        var bFailures = new ConcurrentBag<HttpStatusCode>();

        async Task<List<double>> BAsync(int count)
        {
            var latencies = new List<double>(count);
            for (var i = 0; i < count && !cancellationToken.IsCancellationRequested; i++)
            {
                var started = Stopwatch.GetTimestamp();
                using var response = await b.PostAsJsonAsync("/v1/act", new ActRequest($"{modelB}@v1", ServingSuite.Input(i % 4), new ActOptions(Steps: 4, Seed: i)), cancellationToken);
                latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                if (response.StatusCode != HttpStatusCode.OK) bFailures.Add(response.StatusCode);
            }
            return latencies;
        }

        // Both models loaded and the path warm before anything is measured.
        (await a.PostAsJsonAsync("/v1/act", new ActRequest($"{modelA}@v1", ServingSuite.Input(0), new ActOptions(Steps: 100, Seed: 0)), cancellationToken)).EnsureSuccessStatusCode();
        await BAsync(10);
        bFailures.Clear();

        var unloadedBefore = await BAsync(requests);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var flood = new ConcurrentBag<HttpStatusCode>();
        var flooders = Enumerable.Range(0, clients).Select(i => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    using var response = await a.PostAsJsonAsync("/v1/act",
                        new ActRequest($"{modelA}@v1", ServingSuite.Input(i % 4), new ActOptions(Steps: 100, Seed: i, TimeoutMs: 120_000)), stop.Token);
                    flood.Add(response.StatusCode);
                    // As a well-behaved client does: wait what Retry-After says.
                    if (response.StatusCode != HttpStatusCode.OK) await Task.Delay(response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1), stop.Token);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                }
            }
        })).ToList();
        // The flood has filled A's share of the queue before B measures.
        var filling = Stopwatch.StartNew();
        while (!flood.Contains(HttpStatusCode.TooManyRequests) && filling.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(20, cancellationToken);
        var loaded = await BAsync(requests);
        await stop.CancelAsync();
        await Task.WhenAll(flooders);
        var unloadedAfter = await BAsync(requests);

        var unloaded = unloadedBefore.Concat(unloadedAfter).ToList();
        report.Add("b_unloaded_before_p50_ms", Percentile(unloadedBefore, 0.5));
        report.Add("b_unloaded_before_p99_ms", Percentile(unloadedBefore, 0.99));
        report.Add("b_unloaded_after_p99_ms", Percentile(unloadedAfter, 0.99));
        report.Add("b_unloaded_p50_ms", Percentile(unloaded, 0.5));
        report.Add("b_unloaded_p99_ms", Percentile(unloaded, 0.99));
        report.Add("b_loaded_p50_ms", Percentile(loaded, 0.5));
        report.Add("b_loaded_p99_ms", Percentile(loaded, 0.99));
        report.Add("loaded_over_unloaded_p99", Percentile(loaded, 0.99) / Percentile(unloaded, 0.99));
        report.Add("a_served", flood.Count(s => s == HttpStatusCode.OK));
        report.Add("a_429", flood.Count(s => s == HttpStatusCode.TooManyRequests));
        report.Add("a_503", flood.Count(s => s == HttpStatusCode.ServiceUnavailable));
        report.Add("b_refused", bFailures.Count);
        if (bFailures.Count > 0 || !flood.Contains(HttpStatusCode.TooManyRequests) || flood.Contains(HttpStatusCode.ServiceUnavailable))
        {
            report.Note("fairness check failed: B must get no refusal, A its 429s and no 503");
            report.Failed = true;
        }
    }

    private static double Percentile(List<double> values, double quantile)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(quantile * sorted.Count) - 1)];
    }
}
