using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using VlaCloud.Api.Apis;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Registry;

/// <summary>Drives the registry endpoints the way a client does, for test set-up.</summary>
internal static class RegistryClient
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static async Task<EmbodimentResponse> CreateEmbodimentAsync(this HttpClient client, string? name = null)
    {
        var response = await client.PostAsJsonAsync("/v1/embodiments", new CreateEmbodimentRequest(
            name ?? $"arm-{Guid.NewGuid():N}"[..12], 7, 0, "delta_eef+gripper", [new CameraDto("primary", 224, 224)], 10, 16,
            ["x", "y", "z", "roll", "pitch", "yaw", "gripper"]));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<EmbodimentResponse>())!;
    }

    public static async Task<ArtifactResponse> PutArtifactAsync(this HttpClient client, byte[]? bytes = null)
    {
        bytes ??= RandomNumberGenerator.GetBytes(4096);
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        var response = await client.PostAsync("/v1/checkpoints/artifacts", content);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<ArtifactResponse>())!;
    }

    public static Task<HttpResponseMessage> PostRegistrationAsync(this HttpClient client, string model, string embodiment, string sha256, Guid? parent = null) =>
        client.PostAsJsonAsync("/v1/checkpoints", new
        {
            model,
            embodiment,
            artifact_sha256 = sha256,
            config = new { preset = "tiny", action_horizon = 16 },
            normalization_stats = new { action = new { q01 = new[] { -1.0 }, q99 = new[] { 1.0 } } },
            metrics = new { success_rate = 0.5 },
            parent_checkpoint_id = parent,
        });

    public static async Task<CheckpointResponse> RegisterAsync(this HttpClient client, string model, string embodiment, string sha256, Guid? parent = null)
    {
        var response = await client.PostRegistrationAsync(model, embodiment, sha256, parent);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<CheckpointResponse>())!;
    }

    /// <summary>A tenant with an embodiment, an artifact, two checkpoint versions and a production alias.</summary>
    public static async Task<TenantWorld> CreateWorldAsync(VlaCloudAppFactory app)
    {
        var (tenant, key) = await app.CreateTenantAsync();
        var client = app.CreateClient(key);
        var embodiment = await client.CreateEmbodimentAsync();
        var artifact = await client.PutArtifactAsync();
        var model = $"m-{Guid.NewGuid():N}"[..10];
        var v1 = await client.RegisterAsync(model, embodiment.Name, artifact.Sha256);
        var v2 = await client.RegisterAsync(model, embodiment.Name, artifact.Sha256, v1.Id);
        var alias = await client.PutAsJsonAsync($"/v1/models/{model}/aliases/production", new SetAliasRequest(v1.Id.ToString()));
        Assert.Equal(HttpStatusCode.OK, alias.StatusCode);
        return new TenantWorld(tenant.Id, key, client, embodiment, artifact, model, v1, v2);
    }
}

internal sealed record TenantWorld(
    Guid TenantId, string Key, HttpClient Client, EmbodimentResponse Embodiment, ArtifactResponse Artifact, string Model,
    CheckpointResponse V1, CheckpointResponse V2);
