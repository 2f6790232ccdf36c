using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using VlaCloud.Api.Validation;
using VlaCloud.Registry.Entities;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Registry;

/// <summary>
/// Every input the hardening issue answered with a 500 (item 5) is a 4xx problem naming the field: text past its column
/// (the limit read from the EF model), a NUL in any stored text, a null inside an array, an unknown lineage id.
/// </summary>
[Collection(RegistryCollection.Name)]
public sealed class UncheckedInputTests(ServicesFixture services)
{
    private sealed record Probe(string Field, Func<World, string, Task<HttpResponseMessage>> Send);

    /// <summary>A tenant (its key has every tenant scope) with a world of registry rows, and a platform administrator's client.</summary>
    private sealed record World(TenantWorld Registry, Guid TenantId, HttpClient Client, HttpClient Admin, VlaCloudAppFactory App);

    private static Task<HttpResponseMessage> Post(HttpClient client, string path, object body) => client.PostAsJsonAsync(path, body);

    private static object Embodiment(string? name = null, string? description = null, string actionSpace = "delta_eef+gripper", object? cameras = null, object? actionNames = null) => new
    {
        name = name ?? $"arm-{Guid.NewGuid():N}"[..12], description, action_dim = 2, state_dim = 0, action_space = actionSpace,
        cameras = cameras ?? new[] { new { name = "front", width = 64, height = 64 } }, control_hz = 10, chunk_length = 4, action_names = actionNames,
    };

    private static object Registration(World w, object? config = null, object? stats = null, object? metrics = null, Guid? datasetId = null, Guid? jobId = null) => new
    {
        model = "lineage", embodiment = w.Registry.Embodiment.Name, artifact_sha256 = w.Registry.Artifact.Sha256,
        config = config ?? new { preset = "micro" }, normalization_stats = stats ?? new { arm = new { } }, metrics,
        dataset_id = datasetId, fine_tuning_job_id = jobId,
    };

    /// <summary>For each stored text field: how to send <c>text</c> in it, and the field the problem must name.</summary>
    private static readonly Dictionary<string, Probe> TextFields = new()
    {
        ["tenant display_name (create)"] = new("display_name", (w, text) => Post(w.Admin, "/v1/admin/tenants", new { name = $"t-{Guid.NewGuid():N}"[..12], display_name = text })),
        ["tenant display_name (update)"] = new("display_name", (w, text) => w.Admin.PatchAsJsonAsync($"/v1/admin/tenants/{w.TenantId}", new { display_name = text })),
        ["api key name"] = new("name", (w, text) => Post(w.Admin, $"/v1/admin/tenants/{w.TenantId}/api-keys", new { name = text, scopes = new[] { "inference" } })),
        ["embodiment description"] = new("description", (w, text) => Post(w.Client, "/v1/embodiments", Embodiment(description: text))),
        ["embodiment action_space"] = new("action_space", (w, text) => Post(w.Client, "/v1/embodiments", Embodiment(actionSpace: text))),
        ["alias reason (set)"] = new("reason", (w, text) => w.Client.PutAsJsonAsync($"/v1/models/{w.Registry.Model}/aliases/staging", new { checkpoint = w.Registry.V2.Id.ToString(), reason = text })),
        ["alias reason (rollback)"] = new("reason", async (w, text) =>
        {
            // A rollback needs a move to undo.
            (await w.Client.PutAsJsonAsync($"/v1/models/{w.Registry.Model}/aliases/production", new { checkpoint = w.Registry.V2.Id.ToString() })).EnsureSuccessStatusCode();
            return await Post(w.Client, $"/v1/models/{w.Registry.Model}/aliases/production/rollback", new { reason = text });
        }),
        ["upload filename"] = new("filename", (w, text) => Post(w.Client, "/v1/uploads", new { filename = text, bytes = 10, sha256 = new string('a', 64), purpose = "dataset" })),
        ["upload mime_type"] = new("mime_type", (w, text) => Post(w.Client, "/v1/uploads", new { filename = "d.tar", bytes = 10, sha256 = new string('a', 64), purpose = "dataset", mime_type = text })),
    };

    /// <summary>Text fields whose NUL Postgres refused too: names inside arrays and the jsonb documents.</summary>
    private static readonly Dictionary<string, Probe> NulOnlyFields = new()
    {
        ["camera name"] = new("cameras[0].name", (w, text) => Post(w.Client, "/v1/embodiments", Embodiment(cameras: new[] { new { name = text, width = 64, height = 64 } }))),
        ["action name"] = new("action_names[1]", (w, text) => Post(w.Client, "/v1/embodiments", Embodiment(actionNames: new[] { "x", text }))),
        ["checkpoint config (jsonb)"] = new("config.notes", (w, text) => Post(w.Client, "/v1/checkpoints", Registration(w, config: new { notes = text }))),
        ["checkpoint normalization_stats (jsonb)"] = new("normalization_stats.arm.label", (w, text) => Post(w.Client, "/v1/checkpoints", Registration(w, stats: new { arm = new { label = text } }))),
        ["checkpoint metrics (jsonb)"] = new("metrics.note", (w, text) => Post(w.Client, "/v1/checkpoints", Registration(w, metrics: new { note = text }))),
    };

    public static TheoryData<string> TooLongCases => [.. TextFields.Keys];

    public static TheoryData<string> NulCases => [.. TextFields.Keys.Concat(NulOnlyFields.Keys)];

    private async Task<(VlaCloudAppFactory App, World World)> WorldAsync()
    {
        var app = new VlaCloudAppFactory(services);
        var registry = await RegistryClient.CreateWorldAsync(app);
        var admin = app.CreateClient(await app.CreateAdminKeyAsync());
        return (app, new World(registry, registry.TenantId, registry.Client, admin, app));
    }

    private static async Task AssertProblemNamingAsync(HttpResponseMessage response, HttpStatusCode status, string field, string? messagePart = null)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var errors = JsonDocument.Parse(body).RootElement.GetProperty("errors");
        Assert.True(errors.TryGetProperty(field, out var messages), $"no error for {field}: {body}");
        if (messagePart is not null) Assert.Contains(messagePart, messages[0].GetString());
    }

    [Theory]
    [MemberData(nameof(TooLongCases))]
    public async Task Text_longer_than_its_column_is_a_400_naming_the_field_with_the_limit_of_the_ef_model(string field)
    {
        var (app, world) = await WorldAsync();
        await using var _ = app;
        var probe = TextFields[field];
        var limit = await app.WithDbAsync(db => Task.FromResult(field switch
        {
            _ when field.StartsWith("tenant", StringComparison.Ordinal) => db.MaxLength((Tenant t) => t.DisplayName),
            "api key name" => db.MaxLength((ApiKey k) => k.Name),
            "embodiment description" => db.MaxLength((VlaCloud.Registry.Entities.Embodiment e) => e.Description),
            "embodiment action_space" => db.MaxLength((VlaCloud.Registry.Entities.Embodiment e) => e.ActionSpace),
            _ when field.StartsWith("alias", StringComparison.Ordinal) => db.MaxLength((AliasMove m) => m.Reason),
            "upload filename" => db.MaxLength((Upload u) => u.Filename),
            _ => db.MaxLength((Upload u) => u.MimeType),
        }));

        var atLimit = await probe.Send(world, new string('x', limit));
        Assert.True((int)atLimit.StatusCode < 400, $"{(int)atLimit.StatusCode} at the limit: {await atLimit.Content.ReadAsStringAsync()}");
        await AssertProblemNamingAsync(await probe.Send(world, new string('x', limit + 1)), HttpStatusCode.BadRequest, probe.Field, $"at most {limit} characters");
    }

    [Theory]
    [MemberData(nameof(NulCases))]
    public async Task A_nul_character_in_any_stored_text_is_a_400_naming_the_field(string field)
    {
        var (app, world) = await WorldAsync();
        await using var _ = app;
        var probe = TextFields.GetValueOrDefault(field) ?? NulOnlyFields[field];

        await AssertProblemNamingAsync(await probe.Send(world, "before\0after"), HttpStatusCode.BadRequest, probe.Field, "NUL");
    }

    [Fact]
    public async Task A_nul_in_a_query_that_reaches_postgres_is_a_400_not_a_500()
    {
        var (app, world) = await WorldAsync();
        await using var _ = app;
        // Not stored, only compared; Postgres refuses the NUL all the same, and the refusal is the client's.
        var response = await world.Client.GetAsync("/v1/checkpoints?model=a%00b");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("NUL", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_null_inside_an_array_is_a_400_naming_the_array()
    {
        var (app, world) = await WorldAsync();
        await using var _ = app;
        var cameras = await world.Client.PostAsync("/v1/embodiments", Json($$"""{"name":"nulls","action_dim":2,"state_dim":0,"action_space":"x","cameras":[null],"control_hz":10,"chunk_length":4}"""));
        await AssertProblemNamingAsync(cameras, HttpStatusCode.BadRequest, "cameras", "null");
        var names = await world.Client.PostAsync("/v1/embodiments", Json($$"""{"name":"nulls","action_dim":2,"state_dim":0,"action_space":"x","cameras":[{"name":"f","width":8,"height":8}],"control_hz":10,"chunk_length":4,"action_names":["x",null]}"""));
        await AssertProblemNamingAsync(names, HttpStatusCode.BadRequest, "action_names", "null");
        var scopes = await world.Admin.PostAsync($"/v1/admin/tenants/{world.TenantId}/api-keys", Json("""{"name":"k","scopes":["inference",null]}"""));
        await AssertProblemNamingAsync(scopes, HttpStatusCode.BadRequest, "scopes", "null");
    }

    [Fact]
    public async Task Unknown_or_empty_lineage_ids_are_a_404_problem_not_a_500()
    {
        var (app, world) = await WorldAsync();
        await using var _ = app;
        foreach (var (datasetId, jobId, what) in new[] { ((Guid?)Guid.Empty, (Guid?)null, "dataset"), (Guid.NewGuid(), null, "dataset"), (null, Guid.NewGuid(), "fine_tuning_job") })
        {
            var response = await Post(world.Client, "/v1/checkpoints", Registration(world, datasetId: datasetId, jobId: jobId));
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{(int)response.StatusCode}: {body}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains(what, body, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task Max_concurrent_streams_0_means_no_streams_a_403_not_a_500()
    {
        var (app, world) = await WorldAsync();
        await using var _ = app;
        var patched = await world.Admin.PatchAsJsonAsync($"/v1/admin/tenants/{world.TenantId}", new { limits = new { max_concurrent_streams = 0 } });
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        Assert.Equal(0, (await patched.Content.ReadFromJsonAsync<TenantResponse>())!.Limits.MaxConcurrentStreams);

        var socket = app.Server.CreateWebSocketClient();
        socket.ConfigureRequest = request => request.Headers.Authorization = $"Bearer {world.Registry.Key}";
        var refused = await Assert.ThrowsAnyAsync<Exception>(() => socket.ConnectAsync(new Uri($"ws://localhost/v1/stream?checkpoint={world.Registry.Model}@v1"), CancellationToken.None));
        Assert.Contains("403", refused.Message);

        var negative = await world.Admin.PatchAsJsonAsync($"/v1/admin/tenants/{world.TenantId}", new { limits = new { max_concurrent_streams = -1 } });
        await AssertProblemNamingAsync(negative, HttpStatusCode.BadRequest, "limits.max_concurrent_streams");
    }

    [Fact]
    public async Task Artifact_uris_name_the_artifact_in_the_api_never_a_server_path()
    {
        var (app, world) = await WorldAsync();
        await using var _ = app;
        var expected = $"/v1/checkpoints/artifacts/{world.Registry.Artifact.Sha256}";
        Assert.Equal(expected, world.Registry.Artifact.Uri);

        var checkpoint = await world.Client.GetStringAsync($"/v1/checkpoints/{world.Registry.V1.Id}");
        Assert.Equal(expected, JsonDocument.Parse(checkpoint).RootElement.GetProperty("artifact_uri").GetString());
        var listing = await world.Client.GetStringAsync("/v1/checkpoints?limit=100");
        Assert.DoesNotContain("file:", listing);
        Assert.DoesNotContain(Path.GetTempPath(), listing);
    }

    [Fact]
    public async Task A_checkpoint_whose_config_asks_for_100000_layers_is_refused_at_registration_naming_the_field()
    {
        var (app, world) = await WorldAsync();
        await using var _ = app;
        var folder = Directory.CreateTempSubdirectory("vlacloud-huge-").FullName;
        try
        {
            using (var tar = new MemoryStream(RegistryClient.CheckpointTar()))
                VlaCloud.Policy.PolicyCheckpoint.Unpack(tar, folder);
            var configPath = Path.Combine(folder, VlaCloud.Policy.PolicyCheckpoint.ConfigFile);
            File.WriteAllText(configPath, File.ReadAllText(configPath).Replace("\"lm_layers\": 1,", "\"lm_layers\": 100000,"));
            VlaCloud.Policy.PolicyCheckpoint.WriteManifest(folder);
            using var huge = new MemoryStream();
            VlaCloud.Policy.PolicyCheckpoint.Pack(folder, huge);
            var artifact = await world.Client.PutArtifactAsync(huge.ToArray());

            var refused = await world.Client.PostRegistrationAsync("huge", world.Registry.Embodiment.Name, artifact.Sha256);
            await AssertProblemNamingAsync(refused, HttpStatusCode.UnprocessableEntity, "artifact_sha256", "config.json: lm_layers must be between 1 and 256, not 100000");

            var notACheckpoint = await world.Client.PutArtifactAsync(Encoding.UTF8.GetBytes(new string('x', 4096)));
            await AssertProblemNamingAsync(await world.Client.PostRegistrationAsync("junk", world.Registry.Embodiment.Name, notACheckpoint.Sha256),
                HttpStatusCode.UnprocessableEntity, "artifact_sha256", "not a checkpoint archive");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");
}
