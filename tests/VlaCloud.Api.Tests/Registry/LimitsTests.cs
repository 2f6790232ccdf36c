using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using VlaCloud.Api.Apis;
using VlaCloud.Registry;
using VlaCloud.Api.Limits;
using VlaCloud.Api.Usage;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Registry;

[Collection(LimitsCollection.Name)]
public sealed class LimitsTests(ServicesFixture services, Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public async Task Requests_beyond_the_tenant_burst_get_429_with_retry_after_and_ratelimit_headers()
    {
        await using var app = new VlaCloudAppFactory(services);
        var adminKey = await app.CreateAdminKeyAsync();
        var admin = app.CreateClient(adminKey);
        var tenant = await (await admin.PostAsJsonAsync("/v1/admin/tenants",
            new CreateTenantRequest($"slow-{Guid.NewGuid():N}"[..16], Limits: new TenantLimitsDto(RequestsPerSecond: 0.2, Burst: 3)))).Content.ReadFromJsonAsync<TenantResponse>();
        var key = await (await admin.PostAsJsonAsync($"/v1/admin/tenants/{tenant!.Id}/api-keys", new CreateApiKeyRequest("k", [ApiScopes.RegistryRead])))
            .Content.ReadFromJsonAsync<CreatedApiKeyResponse>();
        var client = app.CreateClient(key!.PlainKey);

        var remaining = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var ok = await client.GetAsync("/v1/embodiments");
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Equal("\"requests\";q=3", ok.Headers.GetValues("RateLimit-Policy").Single());
            var state = ok.Headers.GetValues("RateLimit").Single().Split(';');
            Assert.Equal("\"requests\"", state[0]);
            remaining.Add(state[1]);
            Assert.True(int.Parse(state[2]["t=".Length..]) > 0);
        }
        Assert.Equal(["r=2", "r=1", "r=0"], remaining);

        var refused = await client.GetAsync("/v1/embodiments");
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        var retryAfter = int.Parse(refused.Headers.GetValues("Retry-After").Single());
        Assert.InRange(retryAfter, 1, 6);
        Assert.StartsWith("\"requests\";r=0;", refused.Headers.GetValues("RateLimit").Single());
        var problem = await refused.Content.ReadFromJsonAsync<System.Text.Json.Nodes.JsonObject>();
        Assert.Equal(ProblemTypes.RateLimited, (string?)problem!["type"]);
        Assert.Equal("rate_limited", (string?)problem["code"]);

        // Another tenant's bucket is untouched.
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("/v1/admin/tenants")).StatusCode);
    }

    [Fact]
    public async Task A_tenants_inference_weight_is_1_until_the_administrator_sets_it_between_a_tenth_and_100_and_its_keys_carry_it()
    {
        await using var app = new VlaCloudAppFactory(services);
        var admin = app.CreateClient(await app.CreateAdminKeyAsync());
        var created = await admin.PostAsJsonAsync("/v1/admin/tenants", new CreateTenantRequest($"w-{Guid.NewGuid():N}"[..16]));
        var tenant = (await created.Content.ReadFromJsonAsync<TenantResponse>())!;
        Assert.Equal(1, tenant.Limits.InferenceWeight);
        var key = (await (await admin.PostAsJsonAsync($"/v1/admin/tenants/{tenant.Id}/api-keys", new CreateApiKeyRequest("k", [ApiScopes.Inference])))
            .Content.ReadFromJsonAsync<CreatedApiKeyResponse>())!.PlainKey;
        var keys = app.Services.GetRequiredService<VlaCloud.Api.Keys.ApiKeyCache>();
        Assert.Equal(1, (await keys.FindActiveAsync(key, CancellationToken.None))!.Limits.InferenceWeight);

        foreach (var outside in new[] { 0.05, 0, -1, 100.5, double.MaxValue })
        {
            var refused = await admin.PatchAsJsonAsync($"/v1/admin/tenants/{tenant.Id}", new UpdateTenantRequest(Limits: new TenantLimitsDto(InferenceWeight: outside)));
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Contains("limits.inference_weight", await refused.Content.ReadAsStringAsync());
        }
        var tooHeavy = await admin.PostAsJsonAsync("/v1/admin/tenants", new CreateTenantRequest($"w-{Guid.NewGuid():N}"[..16], Limits: new TenantLimitsDto(InferenceWeight: 1000)));
        Assert.Equal(HttpStatusCode.BadRequest, tooHeavy.StatusCode);
        // The tenant's own key may not weigh itself up: the admin routes are the platform administrator's.
        var own = await app.CreateClient(key).PatchAsJsonAsync($"/v1/admin/tenants/{tenant.Id}", new UpdateTenantRequest(Limits: new TenantLimitsDto(InferenceWeight: 100)));
        Assert.Equal(HttpStatusCode.Forbidden, own.StatusCode);

        var patched = await admin.PatchAsJsonAsync($"/v1/admin/tenants/{tenant.Id}", new UpdateTenantRequest(Limits: new TenantLimitsDto(InferenceWeight: 2.5)));
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        Assert.Equal(2.5, (await admin.GetFromJsonAsync<TenantResponse>($"/v1/admin/tenants/{tenant.Id}"))!.Limits.InferenceWeight);
        // Another limit changed later leaves the weight as it is.
        await admin.PatchAsJsonAsync($"/v1/admin/tenants/{tenant.Id}", new UpdateTenantRequest(Limits: new TenantLimitsDto(Burst: 50)));
        Assert.Equal(2.5, (await admin.GetFromJsonAsync<TenantResponse>($"/v1/admin/tenants/{tenant.Id}"))!.Limits.InferenceWeight);
        // The change dropped the cached key: the next authentication reads the new weight, which the hot path then serves from memory.
        var lookups = keys.DatabaseLookups;
        Assert.Equal(2.5, (await keys.FindActiveAsync(key, CancellationToken.None))!.Limits.InferenceWeight);
        Assert.Equal(2.5, (await keys.FindActiveAsync(key, CancellationToken.None))!.Limits.InferenceWeight);
        Assert.Equal(lookups + 1, keys.DatabaseLookups);
    }

    [Fact]
    public async Task Stream_slots_stop_at_the_tenant_limit_and_come_back_when_released()
    {
        await using var app = new VlaCloudAppFactory(services);
        var slots = app.Services.GetRequiredService<StreamSlots>();
        var tenant = Guid.NewGuid();
        var limits = new LimitsOptions { MaxConcurrentStreams = 2 }.For(TenantLimitOverrides.None);

        var (first, slot1) = await slots.TryAcquireAsync(tenant, limits, TimeSpan.FromMinutes(1));
        var (_, slot2) = await slots.TryAcquireAsync(tenant, limits, TimeSpan.FromMinutes(1));
        var (third, slot3) = await slots.TryAcquireAsync(tenant, limits, TimeSpan.FromMinutes(1));
        Assert.True(first.Allowed);
        Assert.NotNull(slot2);
        Assert.False(third.Allowed);
        Assert.Null(slot3);
        Assert.Equal(2, await slots.CountAsync(tenant));

        await slot1!.DisposeAsync();
        var (fourth, slot4) = await slots.TryAcquireAsync(tenant, limits, TimeSpan.FromMinutes(1));
        Assert.True(fourth.Allowed);
        Assert.True(await slot4!.RenewAsync());
        Assert.False(await slot1.RenewAsync());
    }

    [Fact]
    public async Task Metered_usage_rolls_up_per_day_shows_in_usage_and_exhausts_the_monthly_quota()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (tenant, key) = await app.CreateTenantAsync();
        var checkpoint = Guid.NewGuid();
        using (var scope = app.Services.CreateScope())
        {
            var meter = scope.ServiceProvider.GetRequiredService<IUsageMeter>();
            var limits = new LimitsOptions { MonthlyComputeMsQuota = 1000 }.For(TenantLimitOverrides.None);
            Assert.True((await meter.CheckComputeQuotaAsync(tenant.Id, limits, CancellationToken.None)).Allowed);
            await meter.RecordAsync(new UsageRecord(tenant.Id, checkpoint, 1, 16, 600), CancellationToken.None);
            await meter.RecordAsync(new UsageRecord(tenant.Id, checkpoint, 1, 16, 500), CancellationToken.None);
            var after = await meter.CheckComputeQuotaAsync(tenant.Id, limits, CancellationToken.None);
            Assert.False(after.Allowed);
            Assert.Equal(0, after.Remaining);
            Assert.True(after.RetryAfter > TimeSpan.Zero);
        }

        var usage = await app.CreateClient(key).GetFromJsonAsync<UsageResponse>("/v1/usage");
        var day = Assert.Single(usage!.Data);
        Assert.Equal((checkpoint, 2L, 32L, 1100L), (day.CheckpointId!.Value, day.Requests, day.Actions, day.ComputeMs));
        Assert.Equal(1100, usage.ComputeQuota.UsedMs);
    }

    [Fact]
    public async Task With_the_redis_client_on_its_own_threads_an_authenticated_request_is_rate_limited_through_redis()
    {
        // VlaCloud:RedisOnThreadPool=false leaves the socket manager unset: the client's shared manager with its own
        // dedicated threads (the default, true, puts the client on the thread pool).
        IReadOnlyDictionary<string, string?> Configured(string onPool) => new Dictionary<string, string?>
        {
            ["ConnectionStrings:Redis"] = services.RedisConnectionString, ["VlaCloud:RedisOnThreadPool"] = onPool,
        };
        Assert.Null(VlaCloud.Api.Hosting.VlaCloudHosting.RedisOptions(new ConfigurationBuilder().AddInMemoryCollection(Configured("false")).Build()).SocketManager);
        Assert.Same(StackExchange.Redis.SocketManager.ThreadPool,
            VlaCloud.Api.Hosting.VlaCloudHosting.RedisOptions(new ConfigurationBuilder().AddInMemoryCollection(Configured("true")).Build()).SocketManager);

        await using var app = new VlaCloudAppFactory(services, new Dictionary<string, string?> { ["VlaCloud:RedisOnThreadPool"] = "false" });
        var admin = app.CreateClient(await app.CreateAdminKeyAsync());
        var tenant = await (await admin.PostAsJsonAsync("/v1/admin/tenants",
            new CreateTenantRequest($"own-{Guid.NewGuid():N}"[..16], Limits: new TenantLimitsDto(RequestsPerSecond: 0.2, Burst: 2)))).Content.ReadFromJsonAsync<TenantResponse>();
        var key = await (await admin.PostAsJsonAsync($"/v1/admin/tenants/{tenant!.Id}/api-keys", new CreateApiKeyRequest("k", [ApiScopes.RegistryRead])))
            .Content.ReadFromJsonAsync<CreatedApiKeyResponse>();
        var client = app.CreateClient(key!.PlainKey);
        var answers = new List<HttpResponseMessage>();
        for (var i = 0; i < 3; i++) answers.Add(await client.GetAsync("/v1/embodiments"));

        // Each request took a token from the tenant's bucket in Redis: two answered, the third refused.
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], answers.Select(a => a.StatusCode));
        Assert.Equal(["r=1", "r=0", "r=0"], answers.Select(a => a.Headers.GetValues("RateLimit").Single().Split(';')[1]));
        Assert.True(app.Services.GetRequiredService<StackExchange.Redis.IConnectionMultiplexer>().IsConnected);
        // The round trips ran on the shared manager's dedicated threads (Linux names an OS thread by its first 15 characters).
        if (OperatingSystem.IsLinux())
            Assert.Contains(Directory.EnumerateDirectories("/proc/self/task"), task => File.ReadAllText(Path.Combine(task, "comm")).StartsWith("DefaultSocketMa", StringComparison.Ordinal));
    }

    // Admission leases (VlaCloud:Limits:LeaseWindow): the limiter on its own, on the real Redis, as a replica would run it.

    private async Task<(RequestRateLimiter Limiter, StackExchange.Redis.ConnectionMultiplexer Redis)> ReplicaAsync(TimeSpan leaseWindow)
    {
        var redis = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(services.RedisConnectionString);
        var limiter = new RequestRateLimiter(redis, new RedisKeyspace(services.RedisPrefix),
            Microsoft.Extensions.Options.Options.Create(new LimitsOptions { LeaseWindow = leaseWindow }),
            Microsoft.Extensions.Logging.Abstractions.NullLogger<RequestRateLimiter>.Instance);
        return (limiter, redis);
    }

    // The key bucket's level as the script computes it (missing = full), read on Redis's clock.
    private async Task<double> KeyBucketLevelAsync(StackExchange.Redis.IConnectionMultiplexer redis, Guid keyId, TenantLimits limits) =>
        double.Parse((string)(await redis.GetDatabase().ScriptEvaluateAsync("""
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
            local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
            if b[1] == false then return ARGV[2] end
            return tostring(math.min(tonumber(ARGV[2]), tonumber(b[1]) + (now - tonumber(b[2])) / 1000000 * tonumber(ARGV[1])))
            """, [new RedisKeyspace(services.RedisPrefix).Key($"rl:key:{keyId}")], [limits.KeyRequestsPerSecond, limits.KeyBurst]))!,
            System.Globalization.CultureInfo.InvariantCulture);

    [Theory]
    [InlineData(0)]
    [InlineData(250)]
    public async Task With_leases_off_or_a_low_rate_each_request_takes_one_token_from_redis_with_the_same_answers(int leaseWindowMs)
    {
        var (limiter, redis) = await ReplicaAsync(TimeSpan.FromMilliseconds(leaseWindowMs));
        await using var _ = limiter;
        using var __ = redis;
        var limits = new LimitsOptions().For(TenantLimitOverrides.None with { RequestsPerSecond = 0.2, Burst = 3 });
        var (tenant, key) = (Guid.NewGuid(), Guid.NewGuid());

        var decisions = new List<LimitDecision>();
        for (var i = 0; i < 5; i++) decisions.Add(await limiter.TryAcquireAsync(tenant, key, limits));

        Assert.Equal([true, true, true, false, false], decisions.Select(d => d.Allowed));
        Assert.Equal([2L, 1, 0, 0, 0], decisions.Select(d => d.Remaining));
        Assert.All(decisions, d => Assert.Equal(3, d.Limit));
        Assert.All(decisions.Skip(3), d => Assert.InRange(d.RetryAfter.TotalSeconds, 4, 5.01));
        // Nothing held here: every token was taken from (or refused by) Redis itself.
        if (limiter.Leases is { } leases) Assert.Equal((0, 1), (leases.Find(tenant, key)!.Tokens, leases.Find(tenant, key)!.LastGranted));
        Assert.InRange(await KeyBucketLevelAsync(redis, key, limits), 0, 0.2);
    }

    [Fact]
    public async Task Two_replicas_hammering_one_key_with_leases_admit_no_more_than_the_buckets_allow_and_not_much_less()
    {
        // Two limiters with their own Redis connections and lease tables: two replicas of one deployment.
        var (a, redisA) = await ReplicaAsync(TimeSpan.FromMilliseconds(250));
        var (b, redisB) = await ReplicaAsync(TimeSpan.FromMilliseconds(250));
        await using var _ = a;
        await using var __ = b;
        using var ___ = redisA;
        using var ____ = redisB;
        // Rate 200/s, burst 100 for tenant and key: a lease is at most 12 tokens (burst / 8; 200/s × 250 ms is 50).
        var limits = new LimitsOptions { KeyRequestsPerSecond = 200, KeyBurst = 100 }.For(TenantLimitOverrides.None with { RequestsPerSecond = 200, Burst = 100 });
        var (tenant, key) = (Guid.NewGuid(), Guid.NewGuid());
        var counter = new RedisKeyspace(services.RedisPrefix).Key($"test-counter:{tenant}");

        var admitted = 0;
        var calls = 0;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var until = started + System.Diagnostics.Stopwatch.Frequency; // ~1 s
        async Task Hammer(RequestRateLimiter limiter, bool withCounter)
        {
            while (System.Diagnostics.Stopwatch.GetTimestamp() < until)
            {
                var decision = withCounter ? (await limiter.TryAcquireAsync(tenant, key, limits, counter)).Decision : await limiter.TryAcquireAsync(tenant, key, limits);
                Interlocked.Increment(ref calls);
                if (decision.Allowed) Interlocked.Increment(ref admitted);
            }
        }
        await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(() => Hammer(i % 2 == 0 ? a : b, i < 4))));
        var elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;

        // Allowed by the buckets over the span: the burst plus what refilled (the tenant and key buckets are the same
        // size here); the +1 is the fractional token a refill may have completed at the very end.
        var allowed = limits.Burst + limits.RequestsPerSecond * elapsed;
        output.WriteLine($"admitted {admitted} of {allowed:F1} allowed ({admitted / allowed:P1}) in {elapsed:F3} s; {calls} requests, {a.RedisCalls + b.RedisCalls} Redis calls");
        Assert.True(admitted <= allowed + 1, $"admitted {admitted} of {allowed:F1} allowed in {elapsed:F3} s ({calls} calls)");
        // Under-admission: at most the tokens the two replicas hold unspent at the end (≤ 2 leases of 12 each, plus
        // a refill under way) and the refused calls' rounding; 85 % leaves room for a slow machine's last round trips.
        Assert.True(admitted >= 0.85 * allowed, $"admitted {admitted} of {allowed:F1} allowed in {elapsed:F3} s ({calls} calls)");
        // And leases were used: fewer Redis calls than requests (each refused request still asks Redis).
        Assert.True(a.RedisCalls + b.RedisCalls < calls, $"{a.RedisCalls + b.RedisCalls} Redis calls for {calls} requests");
    }

    [Fact]
    public async Task An_expired_leases_unused_tokens_go_back_to_the_redis_buckets()
    {
        var (limiter, redis) = await ReplicaAsync(TimeSpan.FromMilliseconds(300));
        await using var _ = limiter;
        using var __ = redis;
        // Rate 20/s (a lease of at most 6 tokens: 20/s × 300 ms), burst 1000 so nothing is refused.
        var limits = new LimitsOptions { KeyRequestsPerSecond = 20, KeyBurst = 1000 }.For(TenantLimitOverrides.None with { RequestsPerSecond = 20, Burst = 1000 });
        var (tenant, key) = (Guid.NewGuid(), Guid.NewGuid());

        var admitted = 0;
        var until = System.Diagnostics.Stopwatch.GetTimestamp() + System.Diagnostics.Stopwatch.Frequency;
        while (System.Diagnostics.Stopwatch.GetTimestamp() < until)
        {
            if ((await limiter.TryAcquireAsync(tenant, key, limits)).Allowed) admitted++;
            await Task.Delay(2);
        }
        // Let a refill under way land (well inside the 300 ms window), then Redis's level counts the held tokens as spent.
        await Task.Delay(40);
        var lease = limiter.Leases!.Find(tenant, key)!;
        int held, granted;
        lock (lease) (held, granted) = (lease.Tokens, lease.LastGranted);
        Assert.True(granted > 1, $"the lease never grew (last grant {granted})");
        Assert.True(held > 0, "the lease held nothing to give back");
        var before = await KeyBucketLevelAsync(redis, key, limits);
        lock (lease) Assert.Equal(held, lease.Tokens);
        var beforeAt = System.Diagnostics.Stopwatch.GetTimestamp();

        // Within one window of expiry plus one sweep period the tokens are back: the level is what refilled plus them.
        await Task.Delay(TimeSpan.FromMilliseconds(900));
        Assert.Equal(0, lease.Tokens);
        var after = await KeyBucketLevelAsync(redis, key, limits);
        var refilled = System.Diagnostics.Stopwatch.GetElapsedTime(beforeAt).TotalSeconds * limits.KeyRequestsPerSecond;
        output.WriteLine($"held {held} (last grant {granted}); key bucket {before:F2} → {after:F2}, {refilled:F2} of it refilled");
        Assert.InRange(after - before - refilled, held - 1.0, held + 0.5);
        Assert.True(before < limits.KeyBurst - held - 1, $"the bucket ({before:F1}) was too full to see the return");
    }

    [Fact]
    public async Task A_lease_grows_under_a_sustained_rate_and_falls_back_to_one_token_when_the_rate_drops()
    {
        var (limiter, redis) = await ReplicaAsync(TimeSpan.FromMilliseconds(200));
        await using var _ = limiter;
        using var __ = redis;
        var limits = new LimitsOptions { KeyRequestsPerSecond = 1000, KeyBurst = 1000 }.For(TenantLimitOverrides.None with { RequestsPerSecond = 1000, Burst = 1000 });
        var (tenant, key) = (Guid.NewGuid(), Guid.NewGuid());
        int LastGrant() { var lease = limiter.Leases!.Find(tenant, key)!; lock (lease) return lease.LastGranted; }

        // The first window: no rate seen yet, one token per call.
        Assert.True((await limiter.TryAcquireAsync(tenant, key, limits)).Allowed);
        Assert.Equal(1, LastGrant());

        var until = System.Diagnostics.Stopwatch.GetTimestamp() + System.Diagnostics.Stopwatch.Frequency * 6 / 10;
        var fast = 0;
        while (System.Diagnostics.Stopwatch.GetTimestamp() < until)
        {
            Assert.True((await limiter.TryAcquireAsync(tenant, key, limits)).Allowed);
            fast++;
            await Task.Delay(1);
        }
        // Sustained ~hundreds/s over 200 ms windows: several tokens per grant (at most burst / 8 = 125).
        Assert.InRange(LastGrant(), 2, 125);

        // Then a request every 300 ms: after one period at that rate, back to one token per request.
        for (var i = 0; i < 4; i++)
        {
            await Task.Delay(300);
            Assert.True((await limiter.TryAcquireAsync(tenant, key, limits)).Allowed);
        }
        Assert.Equal(1, LastGrant());
        Assert.True(fast > 20, $"only {fast} fast requests");
    }
}
