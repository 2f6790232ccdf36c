using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using VlaCloud.Api.Tests.Registry;
using VlaCloud.Registry;
using VlaCloud.Registry.Entities;
using VlaCloud.Api.Keys;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Hardening;

/// <summary>
/// Issue 18, item 6: HTTP Basic was accepted on every route and WebSocket upgrades did not check <c>Origin</c>
/// (cross-site WebSocket and CSRF); each unknown key cost a Postgres query with no limit per address; the global
/// <c>admin</c> scope could be granted to any tenant's key.
/// </summary>
[Collection(HardeningCollection.Name)]
public sealed class AuthTests(ServicesFixture services)
{
    [Fact]
    public async Task Basic_credentials_open_the_job_dashboard_only_and_its_post_actions_need_an_antiforgery_token()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (_, tenantKey) = await app.CreateTenantAsync();
        var adminKey = await app.CreateAdminKeyAsync();

        var basic = app.CreateClient();
        basic.DefaultRequestHeaders.Authorization = Basic(tenantKey);
        var api = await basic.GetAsync("/v1/embodiments");
        Assert.Equal(HttpStatusCode.Unauthorized, api.StatusCode);
        Assert.Equal("Bearer", api.Headers.WwwAuthenticate.ToString());
        Assert.Equal(HttpStatusCode.OK, (await app.CreateClient(tenantKey).GetAsync("/v1/embodiments")).StatusCode);

        var dashboard = app.CreateClient();
        dashboard.DefaultRequestHeaders.Authorization = Basic(adminKey);
        Assert.Equal(HttpStatusCode.OK, (await dashboard.GetAsync("/hangfire")).StatusCode);
        // What a page of another site could make the browser send with the cached credentials: no token, refused.
        var forged = await dashboard.PostAsync("/hangfire/recurring/trigger", new FormUrlEncodedContent([new("jobs[]", "upload-cleanup")]));
        Assert.Equal(HttpStatusCode.Forbidden, forged.StatusCode);
    }

    [Fact]
    public async Task A_websocket_upgrade_from_a_page_is_refused_unless_its_origin_is_allowed_while_clients_without_origin_connect()
    {
        await using var closed = new VlaCloudAppFactory(services);
        var world = await RegistryClient.CreateWorldAsync(closed);
        var path = $"/v1/stream?checkpoint={world.Model}@v1";

        var foreign = await Assert.ThrowsAnyAsync<Exception>(() => SessionClient.ConnectAsync(closed, world.Key, path, origin: "https://evil.example"));
        Assert.Contains("403", foreign.Message);
        using (var robot = await SessionClient.ConnectAsync(closed, world.Key, path))
            Assert.Equal("session", (string)(await SessionClient.ReceiveJsonAsync(robot))["type"]!);
        var openpi = await closed.CreateClient(world.Key).SendAsync(new HttpRequestMessage(HttpMethod.Get, $"/v1/openpi/{world.V1.Id}") { Headers = { { "Origin", "https://evil.example" } } });
        Assert.Equal(HttpStatusCode.Forbidden, openpi.StatusCode);
        Assert.Equal("application/problem+json", openpi.Content.Headers.ContentType?.MediaType);

        await using var console = new VlaCloudAppFactory(services, new Dictionary<string, string?> { ["VlaCloud:WebSocketAllowedOrigins:0"] = "https://console.example" });
        using (var page = await SessionClient.ConnectAsync(console, world.Key, path, origin: "https://console.example"))
            Assert.Equal("session", (string)(await SessionClient.ReceiveJsonAsync(page))["type"]!);
        foreach (var origin in new[] { "https://evil.example", "http://console.example", "https://console.example:8443", "null" })
        {
            var refused = await Assert.ThrowsAnyAsync<Exception>(() => SessionClient.ConnectAsync(console, world.Key, path, origin));
            Assert.True(refused.Message.Contains("403"), $"{origin}: {refused.Message}");
        }
    }

    [Fact]
    public async Task The_platform_admin_role_belongs_to_platform_keys_and_never_to_a_tenants_key()
    {
        await using var app = new VlaCloudAppFactory(services);
        var admin = app.CreateClient(await app.CreateAdminKeyAsync());
        var tenant = (await (await admin.PostAsJsonAsync("/v1/admin/tenants", new CreateTenantRequest($"t-{Guid.NewGuid():N}"[..16]))).Content.ReadFromJsonAsync<TenantResponse>())!;

        var granted = await admin.PostAsJsonAsync($"/v1/admin/tenants/{tenant.Id}/api-keys", new CreateApiKeyRequest("ops", [ApiScopes.Admin]));
        Assert.Equal(HttpStatusCode.BadRequest, granted.StatusCode);
        Assert.Contains("scopes", await granted.Content.ReadAsStringAsync());
        var created = (await (await admin.PostAsJsonAsync($"/v1/admin/tenants/{tenant.Id}/api-keys", new CreateApiKeyRequest("all", ApiScopes.Tenant)))
            .Content.ReadFromJsonAsync<CreatedApiKeyResponse>())!;
        var tenantClient = app.CreateClient(created.PlainKey);
        Assert.Equal(HttpStatusCode.Forbidden, (await tenantClient.GetAsync("/v1/admin/tenants")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await tenantClient.GetAsync("/hangfire")).StatusCode);

        // A tenant key row that says admin (written before the roles were separated, or by hand) still is no administrator.
        var (plain, prefix) = ApiKeyFormat.Generate();
        await app.WithDbAsync(async db =>
        {
            db.ApiKeys.Add(new ApiKey { TenantId = tenant.Id, Name = "legacy", Prefix = prefix, Hash = ApiKeyFormat.Hash(plain), Scopes = [.. ApiScopes.All] });
            return await db.SaveChangesAsync();
        });
        Assert.Equal(HttpStatusCode.Forbidden, (await app.CreateClient(plain).GetAsync("/v1/admin/tenants")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.CreateClient(plain).GetAsync("/v1/embodiments")).StatusCode);

        // The administrator acts on no tenant's resources: tenant routes refuse it (the usage route answered 500).
        foreach (var route in new[] { "/v1/embodiments", "/v1/usage", "/v1/checkpoints", "/v1/fine_tuning/jobs" })
            Assert.Equal(HttpStatusCode.Forbidden, (await admin.GetAsync(route)).StatusCode);

        // Platform keys are managed like tenants' keys.
        var other = (await (await admin.PostAsJsonAsync("/v1/admin/api-keys", new CreateAdminKeyRequest("second operator"))).Content.ReadFromJsonAsync<CreatedApiKeyResponse>())!;
        Assert.Null(other.Key.TenantId);
        Assert.Equal([ApiScopes.Admin], other.Key.Scopes);
        var listed = (await admin.GetFromJsonAsync<ListPage<ApiKeyResponse>>("/v1/admin/api-keys"))!;
        Assert.Contains(listed.Data, k => k.Id == other.Key.Id);
        Assert.DoesNotContain(listed.Data, k => k.TenantId is not null);
        Assert.Equal(HttpStatusCode.OK, (await app.CreateClient(other.PlainKey).GetAsync("/v1/admin/tenants")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/v1/admin/api-keys/{other.Key.Id}")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await app.CreateClient(other.PlainKey).GetAsync("/v1/admin/tenants")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.DeleteAsync($"/v1/admin/api-keys/{created.Key.Id}")).StatusCode);
    }

    [Fact]
    public async Task Unknown_keys_cost_one_database_query_each_and_an_address_that_keeps_failing_gets_429_while_known_keys_pass()
    {
        await using var app = new VlaCloudAppFactory(services, new Dictionary<string, string?> { ["VlaCloud:FailedAuthPerMinute"] = "5" });
        var (_, key) = await app.CreateTenantAsync();
        var cache = app.Services.GetRequiredService<ApiKeyCache>();
        var known = app.CreateClient(key);
        Assert.Equal(HttpStatusCode.OK, (await known.GetAsync("/v1/embodiments")).StatusCode);

        var (unknown, _) = ApiKeyFormat.Generate();
        var lookups = cache.DatabaseLookups;
        for (var i = 0; i < 3; i++) Assert.Equal(HttpStatusCode.Unauthorized, (await app.CreateClient(unknown).GetAsync("/v1/embodiments")).StatusCode);
        Assert.Equal(lookups + 1, cache.DatabaseLookups);

        // Two more failures spend the address's five; the next key memory cannot vouch for is refused unread.
        Assert.Equal(HttpStatusCode.Unauthorized, (await app.CreateClient(ApiKeyFormat.Generate().Key).GetAsync("/v1/embodiments")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await app.CreateClient("vlc_malformed").GetAsync("/v1/embodiments")).StatusCode);
        lookups = cache.DatabaseLookups;
        var throttled = await app.CreateClient(ApiKeyFormat.Generate().Key).GetAsync("/v1/embodiments");
        Assert.Equal(HttpStatusCode.TooManyRequests, throttled.StatusCode);
        Assert.Equal("application/problem+json", throttled.Content.Headers.ContentType?.MediaType);
        Assert.True(throttled.Headers.RetryAfter?.Delta > TimeSpan.Zero);
        Assert.Equal(lookups, cache.DatabaseLookups);

        // A key the cache knows is still served from that address.
        Assert.Equal(HttpStatusCode.OK, (await known.GetAsync("/v1/embodiments")).StatusCode);
    }

    private static AuthenticationHeaderValue Basic(string key) => new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"user:{key}")));
}
