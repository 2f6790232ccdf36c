using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using VlaCloud.Api.Apis;
using VlaCloud.Registry;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Registry;

[Collection(RegistryCollection.Name)]
public sealed class CheckpointTests(ServicesFixture services)
{
    [Fact]
    public async Task Twenty_concurrent_registrations_get_versions_1_to_20_without_gaps_or_duplicates()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (_, key) = await app.CreateTenantAsync();
        var client = app.CreateClient(key);
        var embodiment = await client.CreateEmbodimentAsync();
        var artifact = await client.PutArtifactAsync();

        var registrations = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => client.RegisterAsync("racer", embodiment.Name, artifact.Sha256)));

        Assert.Equal(Enumerable.Range(1, 20), registrations.Select(c => c.Version).Order());
        Assert.Equal(20, registrations.Select(c => c.Id).Distinct().Count());
    }

    [Fact]
    public async Task Versions_count_separately_per_embodiment_and_per_tenant()
    {
        await using var app = new VlaCloudAppFactory(services);
        var a = await RegistryClient.CreateWorldAsync(app);
        var otherArm = await a.Client.CreateEmbodimentAsync();
        Assert.Equal(1, (await a.Client.RegisterAsync(a.Model, otherArm.Name, a.Artifact.Sha256)).Version);

        var (_, keyB) = await app.CreateTenantAsync();
        var b = app.CreateClient(keyB);
        var armB = await b.CreateEmbodimentAsync(a.Embodiment.Name);
        var artifactB = await b.PutArtifactAsync();
        Assert.Equal(1, (await b.RegisterAsync(a.Model, armB.Name, artifactB.Sha256)).Version);
    }

    [Fact]
    public async Task A_registered_checkpoint_keeps_its_metadata_and_lineage_and_resolves_by_each_reference_form()
    {
        await using var app = new VlaCloudAppFactory(services);
        var a = await RegistryClient.CreateWorldAsync(app);

        var got = await a.Client.GetFromJsonAsync<CheckpointResponse>($"/v1/checkpoints/{a.V2.Id}");
        Assert.Equal((a.Model, 2, a.V1.Id, a.Artifact.Sha256, a.Artifact.SizeBytes), (got!.Model, got.Version, got.ParentCheckpointId, got.Sha256, got.SizeBytes));
        Assert.Equal("tiny", got.Config.GetProperty("preset").GetString());
        Assert.Equal(0.5, got.Metrics.GetProperty("success_rate").GetDouble());

        foreach (var (reference, expected) in new[] { (a.V2.Id.ToString(), a.V2.Id), ($"{a.Model}@v2", a.V2.Id), ($"{a.Model}@production", a.V1.Id) })
        {
            var resolved = await a.Client.GetFromJsonAsync<CheckpointResponse>($"/v1/checkpoints/resolve?ref={Uri.EscapeDataString(reference)}");
            Assert.Equal(expected, resolved!.Id);
        }
        var malformed = await a.Client.GetAsync("/v1/checkpoints/resolve?ref=not a ref");
        Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
        Assert.Equal("application/problem+json", malformed.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Registration_refuses_an_unknown_artifact_and_a_malformed_body_with_problem_details()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (_, key) = await app.CreateTenantAsync();
        var client = app.CreateClient(key);
        var embodiment = await client.CreateEmbodimentAsync();

        var unknown = await client.PostRegistrationAsync("m", embodiment.Name, new string('a', 64));
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        var malformed = await client.PostRegistrationAsync("m", embodiment.Name, "xyz");
        Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
        Assert.Contains("artifact_sha256", await malformed.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Listing_pages_with_after_and_limit_and_filters_by_model()
    {
        await using var app = new VlaCloudAppFactory(services);
        var a = await RegistryClient.CreateWorldAsync(app);
        var v3 = await a.Client.RegisterAsync(a.Model, a.Embodiment.Name, a.Artifact.Sha256);

        var first = await a.Client.GetFromJsonAsync<ListPage<CheckpointResponse>>($"/v1/checkpoints?model={a.Model}&limit=2");
        Assert.Equal([v3.Id, a.V2.Id], first!.Data.Select(c => c.Id));
        Assert.True(first.HasMore);
        Assert.Equal(a.V2.Id.ToString(), first.LastId);
        var second = await a.Client.GetFromJsonAsync<ListPage<CheckpointResponse>>($"/v1/checkpoints?model={a.Model}&limit=2&after={first.LastId}");
        Assert.Equal([a.V1.Id], second!.Data.Select(c => c.Id));
        Assert.False(second.HasMore);

        var badLimit = await a.Client.GetAsync("/v1/checkpoints?limit=0");
        Assert.Equal(HttpStatusCode.BadRequest, badLimit.StatusCode);
    }

    [Fact]
    public async Task A_public_base_checkpoint_is_visible_to_every_tenant_and_the_tenant_own_version_wins()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (_, key) = await app.CreateTenantAsync();
        var client = app.CreateClient(key);
        var model = $"base-{Guid.NewGuid():N}"[..12];

        // Public rows are made by system code (no tenant), e.g. the demo seed.
        var publicId = await app.WithDbAsync(async db =>
        {
            var store = new VlaCloud.Registry.Artifacts.FileSystemArtifactStore(Path.Combine(Path.GetTempPath(), "vlacloud-test-artifacts"));
            var info = await store.PutAsync(new MemoryStream([1, 2, 3]), CancellationToken.None);
            var embodiment = new VlaCloud.Registry.Entities.Embodiment { Name = $"pub-{Guid.NewGuid():N}"[..12], ActionSpace = "delta_eef+gripper", ActionDim = 7 };
            db.Embodiments.Add(embodiment);
            db.Artifacts.Add(new VlaCloud.Registry.Entities.Artifact { Sha256 = info.Sha256, SizeBytes = info.SizeBytes, Uri = info.Uri, Kind = "checkpoint" });
            await db.SaveChangesAsync();
            var registry = new VlaCloud.Registry.Checkpoints.CheckpointRegistry(db, TimeProvider.System, app.Services.GetRequiredService<VlaCloud.Api.Keys.ApiKeyCache>());
            var checkpoint = await registry.RegisterAsync(new(embodiment.Id.ToString(), model, info.Sha256, "{}", "{}"), CancellationToken.None);
            return (checkpoint.Id, embodiment.Name);
        });

        var resolved = await client.GetFromJsonAsync<CheckpointResponse>($"/v1/checkpoints/resolve?ref={model}@v1");
        Assert.Equal(publicId.Id, resolved!.Id);
        Assert.True(resolved.IsPublic);

        // The tenant's robot may not take the public embodiment's name (it would shadow it), so it has its own name;
        // its version of the model still wins over the public one's.
        var shadow = await client.PostAsJsonAsync("/v1/embodiments", new CreateEmbodimentRequest(
            publicId.Name, 7, 0, "delta_eef+gripper", [new CameraDto("primary", 224, 224)], 10, 16));
        Assert.Equal(HttpStatusCode.Conflict, shadow.StatusCode);
        var own = await client.CreateEmbodimentAsync();
        var artifact = await client.PutArtifactAsync();
        var mine = await client.RegisterAsync(model, own.Name, artifact.Sha256);
        var again = await client.GetFromJsonAsync<CheckpointResponse>($"/v1/checkpoints/resolve?ref={model}@v1");
        Assert.Equal(mine.Id, again!.Id);
    }
}
