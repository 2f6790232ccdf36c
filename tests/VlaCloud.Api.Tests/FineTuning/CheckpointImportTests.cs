using System.Formats.Tar;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using VlaCloud.Parity;
using VlaCloud.Policy.InternVla;
using VlaCloud.Registry;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.FineTuning;

/// <summary>
/// <c>POST /v1/checkpoints/imports</c> on real Postgres, Redis and Hangfire: a released-layout InternVLA-M1 run (the
/// stand-in with every keys.json name) uploaded as a bundle, converted by the trainer and registered.
/// </summary>
[Collection(FineTuningCollection.Name)]
public sealed class CheckpointImportTests(ServicesFixture services) : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("vlacloud-import-api-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    /// <summary>The bundle of a stand-in run (<see cref="CheckpointImportBundle.Write"/>, as the CLI sends it), its .pt optionally replaced.</summary>
    private byte[] Bundle(string? ptReplacement = null)
    {
        var folder = Path.Combine(root, $"run-{Guid.NewGuid():N}");
        var (run, qwen) = StandInInternVlaM1.WriteRun(folder, StandInInternVlaM1.Tensors());
        if (ptReplacement is not null) File.Copy(ptReplacement, Path.Combine(run, "checkpoints", "steps_20000_pytorch_model.pt"), overwrite: true);
        using var tar = new MemoryStream();
        Assert.Equal("steps_20000_pytorch_model.pt", CheckpointImportBundle.Write(run, qwen, tar));
        return tar.ToArray();
    }

    private static async Task<(HttpClient Client, string Embodiment)> TenantAsync(VlaCloudAppFactory app)
    {
        var (_, key) = await app.CreateTenantAsync();
        var client = app.CreateClient(key);
        var embodiment = $"widowx-{Guid.NewGuid():N}"[..14];
        var created = await client.PostAsJsonAsync("/v1/embodiments", new CreateEmbodimentRequest(
            embodiment, 7, 0, "delta_eef+gripper", [new CameraDto("front", 64, 64)], 5, 16));
        Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        return (client, embodiment);
    }

    private static async Task<Guid> UploadAsync(HttpClient client, byte[] bytes, string purpose = "checkpoint_import")
    {
        var created = await client.PostAsJsonAsync("/v1/uploads", new CreateUploadRequest("run.tar", bytes.Length, Convert.ToHexStringLower(SHA256.HashData(bytes)), purpose, "application/x-tar"));
        Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        var upload = (await created.Content.ReadFromJsonAsync<UploadResponse>())!;
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        var part = await client.PutAsync($"/v1/uploads/{upload.Id}/parts/1", content);
        Assert.True(part.StatusCode == HttpStatusCode.OK, await part.Content.ReadAsStringAsync());
        var completed = await client.PostAsJsonAsync($"/v1/uploads/{upload.Id}/complete", new CompleteUploadRequest());
        Assert.True(completed.StatusCode == HttpStatusCode.OK, await completed.Content.ReadAsStringAsync());
        return upload.Id;
    }

    private static async Task<CheckpointImportResponse> StartAsync(HttpClient client, object request)
    {
        var response = await client.PostAsJsonAsync("/v1/checkpoints/imports", request);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync());
        var import = (await response.Content.ReadFromJsonAsync<CheckpointImportResponse>())!;
        Assert.Equal($"/v1/checkpoints/imports/{import.Id}", response.Headers.Location?.OriginalString);
        Assert.Equal("queued", import.Status);
        return import;
    }

    private static async Task<CheckpointImportResponse> WaitAsync(HttpClient client, Guid id)
    {
        CheckpointImportResponse? import = null;
        await Eventually.TrueAsync(async () =>
        {
            import = await client.GetFromJsonAsync<CheckpointImportResponse>($"/v1/checkpoints/imports/{id}");
            return import!.Status is "succeeded" or "failed";
        }, TimeSpan.FromMinutes(3), $"import {id} did not end");
        return import!;
    }

    private static async Task ExpectProblemAsync(HttpResponseMessage response, HttpStatusCode status, string mention)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(mention, body);
    }

    [Fact]
    public async Task A_released_run_uploaded_as_a_bundle_is_imported_registered_as_the_next_version_and_acts_and_is_the_tenants_alone()
    {
        await using var app = new VlaCloudAppFactory(services, FineTuningWorld.Settings(root, trainer: true));
        var (client, embodiment) = await TenantAsync(app);
        var upload = await UploadAsync(client, Bundle());
        var model = $"m1-{Guid.NewGuid():N}"[..12];

        // Bad input is a 400 naming the field, before anything is queued.
        await ExpectProblemAsync(await client.PostAsJsonAsync("/v1/checkpoints/imports", new { model = "Not A Name", upload, embodiments = new { oxe_bridge = embodiment } }),
            HttpStatusCode.BadRequest, "model");
        await ExpectProblemAsync(await client.PostAsJsonAsync("/v1/checkpoints/imports", new { model, embodiments = new { oxe_bridge = embodiment } }), HttpStatusCode.BadRequest, "upload");
        await ExpectProblemAsync(await client.PostAsJsonAsync("/v1/checkpoints/imports", new { model, upload, embodiments = new { oxe_bridge = embodiment }, checkpoint_file = "../steps_1_pytorch_model.pt" }),
            HttpStatusCode.BadRequest, "checkpoint_file");
        await ExpectProblemAsync(await client.PostAsJsonAsync("/v1/checkpoints/imports", new { model, upload, embodiments = new { a = "x", b = "y" } }), HttpStatusCode.BadRequest, "embodiment");
        await ExpectProblemAsync(await client.PostAsJsonAsync("/v1/checkpoints/imports", new { model, upload = Guid.NewGuid(), embodiment }), HttpStatusCode.NotFound, "Upload");
        await ExpectProblemAsync(await client.PostAsJsonAsync("/v1/checkpoints/imports", new { model, upload, embodiment = "no-such-arm" }), HttpStatusCode.NotFound, "no-such-arm");

        var import = await StartAsync(client, new { model, upload, embodiments = new Dictionary<string, string> { ["oxe_bridge"] = embodiment } });
        Assert.Equal(embodiment, import.Embodiment);
        var done = await WaitAsync(client, import.Id);
        Assert.True(done.Status == "succeeded", done.Error);
        Assert.NotNull(done.StartedAt);
        Assert.NotNull(done.FinishedAt);

        var checkpoint = (await client.GetFromJsonAsync<CheckpointResponse>($"/v1/checkpoints/{done.CheckpointId}"))!;
        Assert.Equal((model, 1, embodiment), (checkpoint.Model, checkpoint.Version, checkpoint.Embodiment));
        Assert.Equal("internvla-m1", checkpoint.Config.GetProperty("family").GetString());
        Assert.Equal("checkpoints/steps_20000_pytorch_model.pt", checkpoint.Metrics.GetProperty("import").GetProperty("checkpoint").GetString());
        Assert.True(checkpoint.NormalizationStats.TryGetProperty(embodiment, out _));

        var act = await client.PostAsJsonAsync("/v1/act", new ActRequest($"{model}@v1",
            new ObservationInput(new Dictionary<string, ImageInput> { ["front"] = new("raw", new byte[64 * 64 * 3], [64, 64, 3]) }, null, "put the spoon on the towel"),
            new ActOptions(Steps: 2, Seed: 1)));
        Assert.True(act.StatusCode == HttpStatusCode.OK, await act.Content.ReadAsStringAsync());
        var actions = (await act.Content.ReadFromJsonAsync<ActResponse>())!.Actions;
        Assert.Equal(16, actions.Length);
        Assert.All(actions, step => Assert.Equal(7, step.Length));
        Assert.All(actions, step => Assert.All(step, v => Assert.True(float.IsFinite(v))));

        // A second import of the same bundle is the next version.
        var again = await WaitAsync(client, (await StartAsync(client, new { model, upload, embodiment, embodiments = new Dictionary<string, string> { ["oxe_bridge"] = embodiment } })).Id);
        Assert.True(again.Status == "succeeded", again.Error);
        Assert.Equal(2, (await client.GetFromJsonAsync<CheckpointResponse>($"/v1/checkpoints/{again.CheckpointId}"))!.Version);

        // Another tenant sees neither the import nor the upload behind it.
        var (other, otherEmbodiment) = await TenantAsync(app);
        await ExpectProblemAsync(await other.GetAsync($"/v1/checkpoints/imports/{import.Id}"), HttpStatusCode.NotFound, "not found");
        await ExpectProblemAsync(await other.PostAsJsonAsync("/v1/checkpoints/imports", new { model, upload, embodiment = otherEmbodiment }), HttpStatusCode.NotFound, "not found");
    }

    [Fact]
    public async Task An_import_past_the_storage_quota_is_refused_with_413()
    {
        await using var app = new VlaCloudAppFactory(services, FineTuningWorld.Settings(root, trainer: false));
        var admin = app.CreateClient(await app.CreateAdminKeyAsync());
        var tenant = (await (await admin.PostAsJsonAsync("/v1/admin/tenants", new CreateTenantRequest($"q-{Guid.NewGuid():N}"[..16]))).Content.ReadFromJsonAsync<TenantResponse>())!;
        var key = (await (await admin.PostAsJsonAsync($"/v1/admin/tenants/{tenant.Id}/api-keys", new CreateApiKeyRequest("k", ApiScopes.Tenant)))
            .Content.ReadFromJsonAsync<CreatedApiKeyResponse>())!.PlainKey;
        var client = app.CreateClient(key);
        var embodiment = $"widowx-{Guid.NewGuid():N}"[..14];
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsJsonAsync("/v1/embodiments", new CreateEmbodimentRequest(
            embodiment, 7, 0, "delta_eef+gripper", [new CameraDto("front", 64, 64)], 5, 16))).StatusCode);
        var bundle = Bundle();
        var upload = await UploadAsync(client, bundle);
        // The bundle alone fills the quota: the converted checkpoint cannot fit.
        var limited = await admin.PatchAsJsonAsync($"/v1/admin/tenants/{tenant.Id}", new UpdateTenantRequest(Limits: new TenantLimitsDto(StorageQuotaBytes: bundle.Length)));
        Assert.Equal(HttpStatusCode.OK, limited.StatusCode);
        // The change reaches the key cache through Redis: asked until it has (an import accepted meanwhile stays queued, no trainer runs here).
        HttpResponseMessage? refused = null;
        await Eventually.TrueAsync(async () =>
        {
            refused = await client.PostAsJsonAsync("/v1/checkpoints/imports", new { model = "m1", upload, embodiment });
            return refused.StatusCode != HttpStatusCode.Accepted;
        }, TimeSpan.FromSeconds(20), "the lowered quota never applied");
        await ExpectProblemAsync(refused!, HttpStatusCode.RequestEntityTooLarge, "storage_quota_bytes");
    }

    [Fact]
    public async Task A_pt_that_pickles_a_function_and_a_bundle_with_a_dotdot_entry_fail_the_import_with_the_reason_and_register_nothing()
    {
        await using var app = new VlaCloudAppFactory(services, FineTuningWorld.Settings(root, trainer: true));
        var (client, embodiment) = await TenantAsync(app);
        var renames = new Dictionary<string, string> { ["oxe_bridge"] = embodiment };

        var function = Path.Combine(TinyInternVlaM1.FixtureFolder, "..", "torch-pickle", "function_global.pt");
        var pickled = await WaitAsync(client, (await StartAsync(client, new { model = "m1-pickled", upload = await UploadAsync(client, Bundle(function)), embodiments = renames })).Id);
        Assert.Equal("failed", pickled.Status);
        Assert.Contains("steps_20000_pytorch_model.pt", pickled.Error);
        Assert.Contains("posix.system", pickled.Error);
        Assert.Contains("refused", pickled.Error);
        Assert.DoesNotContain(root, pickled.Error);
        Assert.Null(pickled.CheckpointId);

        // A tar whose entry climbs out of the bundle: refused before anything is converted.
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            using var inner = new MemoryStream(Bundle());
            using var reader = new TarReader(inner);
            while (reader.GetNextEntry() is { } entry) writer.WriteEntry(entry);
            writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "qwen/../../escaped.txt") { DataStream = new MemoryStream("x"u8.ToArray()) });
        }
        var climbing = await WaitAsync(client, (await StartAsync(client, new { model = "m1-climbing", upload = await UploadAsync(client, tar.ToArray()), embodiments = renames })).Id);
        Assert.Equal("failed", climbing.Status);
        Assert.Contains("../../escaped.txt", climbing.Error);
        Assert.False(File.Exists(Path.Combine(root, "work-inproc", "escaped.txt")));

        var checkpoints = await client.GetFromJsonAsync<ListPage<CheckpointResponse>>("/v1/checkpoints?limit=100");
        Assert.DoesNotContain(checkpoints!.Data, c => c.Model.StartsWith("m1-", StringComparison.Ordinal));
    }
}
