using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using VlaCloud.Api.Tests.Registry;
using VlaCloud.Registry;
using VlaCloud.Registry.Artifacts;
using VlaCloud.Registry.Entities;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Hardening;

/// <summary>Issue 18, "What to build", trainer: a per-tenant storage quota with a clear 4xx; unreferenced artifacts garbage-collected.</summary>
[Collection(HardeningCollection.Name)]
public sealed class StorageTests(ServicesFixture services) : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("vlacloud-storage-").FullName;

    [Fact]
    public async Task Storage_past_the_tenant_quota_is_refused_with_413_and_garbage_collection_gives_unreferenced_bytes_back()
    {
        await using var app = new VlaCloudAppFactory(services, new Dictionary<string, string?>
        {
            ["VlaCloud:ArtifactsPath"] = Path.Combine(root, "artifacts"),
            ["VlaCloud:Artifacts:UnreferencedGracePeriod"] = "00:00:00",
        });
        // Registration accepts only servable checkpoints, so the registered artifact is a real (micro) checkpoint of C bytes;
        // the quota leaves room for 12,000 bytes beside it.
        var checkpointBytes = RegistryClient.CheckpointTar();
        long c = checkpointBytes.Length, quota = c + 12_000;
        var admin = app.CreateClient(await app.CreateAdminKeyAsync());
        var tenant = (await (await admin.PostAsJsonAsync("/v1/admin/tenants", new CreateTenantRequest($"s-{Guid.NewGuid():N}"[..16]))).Content.ReadFromJsonAsync<TenantResponse>())!;
        var limited = await admin.PatchAsJsonAsync($"/v1/admin/tenants/{tenant.Id}", new UpdateTenantRequest(Limits: new TenantLimitsDto(StorageQuotaBytes: quota)));
        Assert.Equal(quota, (await limited.Content.ReadFromJsonAsync<TenantResponse>())!.Limits.StorageQuotaBytes);
        var key = (await (await admin.PostAsJsonAsync($"/v1/admin/tenants/{tenant.Id}/api-keys", new CreateApiKeyRequest("k", ApiScopes.Tenant)))
            .Content.ReadFromJsonAsync<CreatedApiKeyResponse>())!.PlainKey;
        var client = app.CreateClient(key);
        var embodiment = await client.CreateEmbodimentAsync();
        var store = (FileSystemArtifactStore)app.Services.GetRequiredService<IArtifactStore>();

        var registered = await client.PutArtifactAsync(checkpointBytes);
        var checkpoint = await client.RegisterAsync($"m-{Guid.NewGuid():N}"[..10], embodiment.Name, registered.Sha256);
        var unregistered = await client.PutArtifactAsync(RandomNumberGenerator.GetBytes(8000));

        var announced = await PutAsync(client, RandomNumberGenerator.GetBytes(8000), announceLength: true);
        var refused = await ExpectStorageFullAsync(announced);
        Assert.Equal((c + 8000, quota, 8000L), (refused.GetProperty("storage_used_bytes").GetInt64(), refused.GetProperty("storage_quota_bytes").GetInt64(),
            refused.GetProperty("needed_bytes").GetInt64()));
        var chunkedBytes = RandomNumberGenerator.GetBytes(8000);
        await ExpectStorageFullAsync(await PutAsync(client, chunkedBytes, announceLength: false));
        var chunkedSha = Convert.ToHexStringLower(SHA256.HashData(chunkedBytes));
        Assert.True(File.Exists(store.PathOf(chunkedSha)), "a chunked body is stored before it can be measured");

        await ExpectStorageFullAsync(await client.PostAsJsonAsync("/v1/uploads", new CreateUploadRequest("big.tar", 5000, new string('a', 64), "dataset")));
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsJsonAsync("/v1/uploads", new CreateUploadRequest("small.tar", 3000, new string('b', 64), "dataset"))).StatusCode);

        // A job stores training states and a result: none starts into a full storage.
        var dataset = await app.WithDbAsync(async db =>
        {
            var row = new Dataset { TenantId = tenant.Id, Name = "d.tar", EmbodimentId = embodiment.Id, ArtifactSha256 = registered.Sha256, Status = DatasetStatus.Ready };
            db.Datasets.Add(row);
            await db.SaveChangesAsync();
            return row.Id;
        });
        await admin.PatchAsJsonAsync($"/v1/admin/tenants/{tenant.Id}", new UpdateTenantRequest(Limits: new TenantLimitsDto(StorageQuotaBytes: c + 11_000)));
        await ExpectStorageFullAsync(await client.PostAsJsonAsync("/v1/fine_tuning/jobs", new { @base = checkpoint.Id.ToString(), dataset, model = checkpoint.Model }));
        await admin.PatchAsJsonAsync($"/v1/admin/tenants/{tenant.Id}", new UpdateTenantRequest(Limits: new TenantLimitsDto(StorageQuotaBytes: quota)));

        using (var scope = app.Services.CreateScope())
        {
            var collected = await scope.ServiceProvider.GetRequiredService<ArtifactCollectionJob>().RunAsync(CancellationToken.None);
            Assert.True(collected.Rows >= 1 && collected.Blobs >= 2, $"{collected}");
        }
        Assert.False(File.Exists(store.PathOf(unregistered.Sha256)));
        Assert.False(File.Exists(store.PathOf(chunkedSha)));
        Assert.True(File.Exists(store.PathOf(registered.Sha256)));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"/v1/checkpoints/{checkpoint.Id}")).StatusCode);

        // C registered + 3,000 reserved by the pending upload: 8,000 more fit again.
        Assert.Equal(HttpStatusCode.Created, (await PutAsync(client, RandomNumberGenerator.GetBytes(8000), announceLength: true)).StatusCode);
    }

    private static async Task<JsonElement> ExpectStorageFullAsync(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.RequestEntityTooLarge, $"{(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(body).RootElement.Clone();
        Assert.Equal("Storage quota exceeded", problem.GetProperty("title").GetString());
        return problem;
    }

    private static Task<HttpResponseMessage> PutAsync(HttpClient client, byte[] bytes, bool announceLength)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/checkpoints/artifacts") { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        // Without a length the body is sent chunked, as a client streaming a file of unknown size does.
        if (!announceLength) request.Headers.TransferEncodingChunked = true;
        return client.SendAsync(request);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
