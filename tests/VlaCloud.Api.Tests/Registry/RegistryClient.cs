using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using VlaCloud.Api.Apis;
using VlaCloud.Policy;
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
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"POST /v1/embodiments: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<EmbodimentResponse>())!;
    }

    /// <summary>Puts <paramref name="bytes"/>, or by default a fresh <see cref="CheckpointTar"/> (registration accepts only servable checkpoints).</summary>
    public static async Task<ArtifactResponse> PutArtifactAsync(this HttpClient client, byte[]? bytes = null)
    {
        bytes ??= CheckpointTar();
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
            normalization_stats = MicroStatsJson,
            metrics = new { success_rate = 0.5 },
            parent_checkpoint_id = parent,
        });

    public static async Task<CheckpointResponse> RegisterAsync(this HttpClient client, string model, string embodiment, string sha256, Guid? parent = null)
    {
        var response = await client.PostRegistrationAsync(model, embodiment, sha256, parent);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<CheckpointResponse>())!;
    }

    /// <summary>
    /// A real checkpoint archive of a micro policy, as small as the model gets (~100 kB), with other bytes on every call:
    /// its normalization.json also holds statistics for a made-up embodiment of a fresh name.
    /// </summary>
    public static byte[] CheckpointTar()
    {
        var directory = Directory.CreateTempSubdirectory("vlacloud-registry-ckpt-").FullName;
        try
        {
            foreach (var file in Directory.EnumerateFiles(MicroCheckpoint.Value)) File.Copy(file, Path.Combine(directory, Path.GetFileName(file)));
            var path = Path.Combine(directory, PolicyCheckpoint.NormalizationFile);
            var stats = NormalizationStats.FromJson(File.ReadAllText(path));
            stats[$"nonce-{Guid.NewGuid():N}"] = stats.Values.First();
            File.WriteAllText(path, NormalizationStats.ToJson(stats));
            PolicyCheckpoint.WriteManifest(directory);
            using var tar = new MemoryStream();
            PolicyCheckpoint.Pack(directory, tar);
            return tar.ToArray();
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>The smallest config of the model family (one layer of each part, widths of 16).</summary>
    public static PolicyConfig Micro { get; } = PolicyConfig.Tiny with
    {
        Name = "micro", ImageSize = 16, PatchSize = 8, VisionWidth = 16, VisionLayers = 1, VisionHeads = 2, LmWidth = 16, LmLayers = 1, LmHeads = 2,
        LmMlpWidth = 32, LatentQueries = 2, BridgeWidth = 16, BridgeLayers = 1, BridgeHeads = 2, ExpertWidth = 16, ExpertLayers = 1, ExpertHeads = 2,
    };

    /// <summary>The micro policy's statistics: identity for a 7-action arm without state (the shared test-policy helper).</summary>
    private static Dictionary<string, NormalizationStats> MicroStats => new() { ["registry-arm"] = new(TestPolicies.IdentityFeature(7)) };

    /// <summary>The registration body's <c>normalization_stats</c>: the micro policy's, as its normalization.json holds them.</summary>
    public static JsonElement MicroStatsJson => JsonDocument.Parse(NormalizationStats.ToJson(MicroStats)).RootElement;

    private static readonly Lazy<string> MicroCheckpoint = new(() =>
    {
        var directory = Directory.CreateTempSubdirectory("vlacloud-registry-micro-").FullName;
        using var policy = VlaPolicy.Create(Micro, MicroStats);
        policy.Save(directory);
        return directory;
    });

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
