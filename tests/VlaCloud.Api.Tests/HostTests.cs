using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using Microsoft.EntityFrameworkCore;
using VlaCloud.Contracts;
using VlaCloud.Registry;
using VlaCloud.Registry.Entities;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests;

[Collection(HostCollection.Name)]
public sealed class HostTests(ServicesFixture services)
{
    [Trait("Category", "Slow")]
    [Fact]
    public async Task Starting_twice_on_one_database_migrates_once_and_seeds_one_demo_tenant_key_admin_key_and_checkpoint()
    {
        var database = await services.CreateDatabaseAsync();
        var keyFile = Path.Combine(Path.GetTempPath(), $"vlacloud-demo-key-{Guid.NewGuid():N}");
        var adminKeyFile = Path.Combine(Path.GetTempPath(), $"vlacloud-admin-key-{Guid.NewGuid():N}");
        var settings = new Dictionary<string, string?>
        {
            ["VlaCloud:SeedDemo"] = "true", ["VlaCloud:DemoKeyFile"] = keyFile, ["VlaCloud:AdminKeyFile"] = adminKeyFile,
        };
        try
        {
            for (var start = 0; start < 2; start++)
            {
                await using var app = new VlaCloudAppFactory(database, services.RedisConnectionString, services.RedisPrefix, settings);
                Assert.Equal(HttpStatusCode.OK, (await app.CreateClient().GetAsync("/readyz")).StatusCode);
                var (tenants, tenantKeys, adminKeys, pending) = await app.WithDbAsync(async db => (
                    await db.Tenants.CountAsync(t => t.Name == "demo"),
                    await db.ApiKeys.CountAsync(k => k.TenantId != null),
                    await db.ApiKeys.CountAsync(k => k.TenantId == null),
                    (await db.Database.GetPendingMigrationsAsync()).Count()));
                Assert.Equal((1, 1, 1, 0), (tenants, tenantKeys, adminKeys, pending));
                Assert.Equal(1, await app.WithDbAsync(db => db.Checkpoints.IgnoreQueryFilters().CountAsync(c => c.ModelName == "sim-demo" && c.TenantId == null)));
            }

            // The demo key gets actions from the public demo checkpoint: one chunk of the sim embodiment.
            await using (var app = new VlaCloudAppFactory(database, services.RedisConnectionString, services.RedisPrefix, settings))
            {
                var client = app.CreateClient((await File.ReadAllTextAsync(keyFile)).Trim());
                var image = new ImageInput("raw", new byte[64 * 64 * 3], [64, 64, 3]);
                var observation = new ObservationInput(new Dictionary<string, ImageInput> { ["main"] = image, ["wrist"] = image },
                    [0.5f, 0.5f, 1f], "pick the red cube and place it in the blue bowl");
                var response = await client.PostAsJsonAsync("/v1/act", new ActRequest("sim-demo@production", observation, new ActOptions(Seed: 1)));
                Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
                var acted = (await response.Content.ReadFromJsonAsync<ActResponse>())!;
                Assert.Equal(("sim-demo", 1, "sim-tabletop"), (acted.Checkpoint.Model, acted.Checkpoint.Version, acted.Checkpoint.Embodiment));
                Assert.Equal(8, acted.Actions.Length);
                Assert.All(acted.Actions, a => Assert.True(a.Length == 3 && a.All(float.IsFinite)));
                // The seeded embodiment says it is the simulator's (the column fine-tuning reads), gripper binary.
                var embodiments = await client.GetFromJsonAsync<ListPage<EmbodimentResponse>>("/v1/embodiments?limit=100");
                var sim = Assert.Single(embodiments!.Data, e => e.Name == "sim-tabletop");
                Assert.Equal(("sim-tabletop", true), (sim.Simulator, sim.IsPublic));
                Assert.Equal([2], sim.BinaryActionDims);
            }

            // A build bundling other demo weights registers them as the next version on its next start and moves the alias;
            // the old version stays for a rollback. The stored demo is made to look like an older build's, past the
            // trigger that keeps checkpoints immutable.
            await using (var app = new VlaCloudAppFactory(database, services.RedisConnectionString, services.RedisPrefix, settings))
                await app.WithDbAsync(db => db.Database.ExecuteSqlRawAsync(
                    "ALTER TABLE checkpoints DISABLE TRIGGER checkpoints_immutable; " +
                    "UPDATE checkpoints SET sha256 = repeat('0', 64) WHERE model_name = 'sim-demo' AND tenant_id IS NULL; " +
                    "ALTER TABLE checkpoints ENABLE TRIGGER checkpoints_immutable;"));
            await using (var app = new VlaCloudAppFactory(database, services.RedisConnectionString, services.RedisPrefix, settings))
            {
                Assert.Equal(HttpStatusCode.OK, (await app.CreateClient().GetAsync("/readyz")).StatusCode);
                var (versions, production) = await app.WithDbAsync(async db => (
                    await db.Checkpoints.IgnoreQueryFilters().Where(c => c.ModelName == "sim-demo" && c.TenantId == null).Select(c => c.Version).OrderBy(v => v).ToListAsync(),
                    await db.Aliases.IgnoreQueryFilters().Where(a => a.ModelName == "sim-demo" && a.Name == "production").Select(a => a.Checkpoint!.Version).SingleAsync()));
                Assert.Equal([1, 2], versions);
                Assert.Equal(2, production);
            }

            var demoKey = (await File.ReadAllTextAsync(keyFile)).Trim();
            Assert.NotNull(ApiKeyFormat.TryGetPrefix(demoKey));
            if (OperatingSystem.IsLinux()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));

            // Two roles, two keys: the demo tenant's key is not the platform's, and the other way round.
            var adminKey = (await File.ReadAllTextAsync(adminKeyFile)).Trim();
            if (OperatingSystem.IsLinux()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(adminKeyFile));
            await using (var app = new VlaCloudAppFactory(database, services.RedisConnectionString, services.RedisPrefix, settings))
            {
                Assert.Equal(HttpStatusCode.Forbidden, (await app.CreateClient(demoKey).GetAsync("/v1/admin/tenants")).StatusCode);
                Assert.Equal(HttpStatusCode.OK, (await app.CreateClient(adminKey).GetAsync("/v1/admin/tenants")).StatusCode);
                Assert.Equal(HttpStatusCode.Forbidden, (await app.CreateClient(adminKey).GetAsync("/v1/embodiments")).StatusCode);
            }
        }
        finally
        {
            File.Delete(keyFile);
            File.Delete(adminKeyFile);
        }
    }

    [Fact]
    public async Task The_job_dashboard_asks_for_basic_credentials_and_opens_for_an_admin_key()
    {
        await using var app = new VlaCloudAppFactory(services);
        var client = app.CreateClient();

        var anonymous = await client.GetAsync("/hangfire");
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.StartsWith("Basic", anonymous.Headers.WwwAuthenticate.ToString());

        var adminKey = await app.CreateAdminKeyAsync();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"admin:{adminKey}")));
        var dashboard = await client.GetAsync("/hangfire");
        Assert.Equal(HttpStatusCode.OK, dashboard.StatusCode);
        Assert.Contains("VlaCloud jobs", await dashboard.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_job_dashboard_refuses_a_key_without_the_admin_scope_with_problem_details()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (_, key) = await app.CreateTenantAsync(scopes: ApiScopes.Inference);
        var response = await app.CreateClient(key).GetAsync("/hangfire");
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task A_revoked_or_malformed_key_is_refused_with_401_problem_details()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (tenant, key) = await app.CreateTenantAsync();
        await app.WithDbAsync(db => db.ApiKeys.Where(k => k.TenantId == tenant.Id)
            .ExecuteUpdateAsync(k => k.SetProperty(x => x.RevokedAt, DateTimeOffset.UtcNow)));

        foreach (var presented in new[] { key, "vlc_not-a-key", "" })
        {
            var response = await app.CreateClient(presented.Length > 0 ? presented : "x").GetAsync("/hangfire");
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }
    }
}
