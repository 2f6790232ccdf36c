using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using VlaCloud.Api.Apis;
using VlaCloud.Registry;
using VlaCloud.Api.Keys;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Registry;

[Collection(RegistryCollection.Name)]
public sealed class ApiKeyTests(ServicesFixture services)
{
    [Fact]
    public async Task A_revoked_key_is_refused_at_once_by_every_replica_that_had_it_cached()
    {
        await using var replica1 = new VlaCloudAppFactory(services);
        await using var replica2 = new VlaCloudAppFactory(services);
        var adminKey = await replica1.CreateAdminKeyAsync();
        var admin = replica1.CreateClient(adminKey);

        var tenant = await (await admin.PostAsJsonAsync("/v1/admin/tenants", new CreateTenantRequest($"acme-{Guid.NewGuid():N}"[..16]))).Content.ReadFromJsonAsync<TenantResponse>();
        var created = await admin.PostAsJsonAsync($"/v1/admin/tenants/{tenant!.Id}/api-keys", new CreateApiKeyRequest("robot", [ApiScopes.RegistryRead]));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var key = (await created.Content.ReadFromJsonAsync<CreatedApiKeyResponse>())!;

        var client1 = replica1.CreateClient(key.PlainKey);
        var client2 = replica2.CreateClient(key.PlainKey);
        Assert.Equal(HttpStatusCode.OK, (await client1.GetAsync("/v1/embodiments")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client2.GetAsync("/v1/embodiments")).StatusCode);
        Assert.True(replica2.Services.GetRequiredService<ApiKeyCache>().Count > 0, "replica 2 should serve the key from its cache");

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/v1/admin/tenants/{tenant.Id}/api-keys/{key.Key.Id}")).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, (await client1.GetAsync("/v1/embodiments")).StatusCode);
        // Replica 2 hears of it through Redis pub/sub, which is delivered asynchronously: allow the delivery
        // time (milliseconds) but nothing like a cache TTL (minutes).
        var clock = Stopwatch.StartNew();
        HttpStatusCode status;
        while ((status = (await client2.GetAsync("/v1/embodiments")).StatusCode) == HttpStatusCode.OK && clock.Elapsed < TimeSpan.FromSeconds(2))
            await Task.Delay(10);
        Assert.Equal(HttpStatusCode.Unauthorized, status);
    }

    [Fact]
    public async Task A_new_key_is_shown_once_and_listed_later_without_its_secret()
    {
        await using var app = new VlaCloudAppFactory(services);
        var adminKey = await app.CreateAdminKeyAsync();
        var admin = app.CreateClient(adminKey);
        var tenant = await (await admin.PostAsJsonAsync("/v1/admin/tenants", new CreateTenantRequest($"t-{Guid.NewGuid():N}"[..16]))).Content.ReadFromJsonAsync<TenantResponse>();

        var created = await (await admin.PostAsJsonAsync($"/v1/admin/tenants/{tenant!.Id}/api-keys",
            new CreateApiKeyRequest("ci", [ApiScopes.Inference, ApiScopes.RegistryRead], DateTimeOffset.UtcNow.AddDays(1)))).Content.ReadFromJsonAsync<CreatedApiKeyResponse>();
        Assert.StartsWith($"vlc_{created!.Key.Prefix}_", created.PlainKey);

        var listed = await admin.GetStringAsync($"/v1/admin/tenants/{tenant.Id}/api-keys");
        Assert.Contains(created.Key.Prefix, listed);
        Assert.DoesNotContain(created.PlainKey, listed);

        var badScope = await admin.PostAsJsonAsync($"/v1/admin/tenants/{tenant.Id}/api-keys", new CreateApiKeyRequest("x", ["root"]));
        Assert.Equal(HttpStatusCode.BadRequest, badScope.StatusCode);
        var noAdmin = await app.CreateClient(created.PlainKey).GetAsync("/v1/admin/tenants");
        Assert.Equal(HttpStatusCode.Forbidden, noAdmin.StatusCode);
    }

    [Fact]
    public async Task An_expired_key_is_refused_even_while_cached()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (tenant, _) = await app.CreateTenantAsync();
        var (entity, plain) = await app.WithDbAsync(async db =>
        {
            using var scope = app.Services.CreateScope();
            return await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>()
                .IssueAsync(tenant.Id, "short", [ApiScopes.RegistryRead], DateTimeOffset.UtcNow.AddSeconds(10), CancellationToken.None);
        });
        var client = app.CreateClient(plain);
        // Ten seconds of validity: the first request must land before expiry even on a loaded machine.
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/embodiments")).StatusCode);
        var wait = entity.ExpiresAt!.Value - DateTimeOffset.UtcNow;
        if (wait > TimeSpan.Zero) await Task.Delay(wait + TimeSpan.FromMilliseconds(50));
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/v1/embodiments")).StatusCode);
    }
}
