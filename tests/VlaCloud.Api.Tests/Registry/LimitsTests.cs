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
public sealed class LimitsTests(ServicesFixture services)
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
}
