using System.Formats.Tar;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using VlaCloud.Api.Apis;
using VlaCloud.Parity;
using VlaCloud.Policy;
using VlaCloud.Sim;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.FineTuning;

/// <summary>Uploads, datasets and fine-tuning jobs on real Postgres, Redis and Hangfire.</summary>
[CollectionDefinition(Name)]
public sealed class FineTuningCollection : ICollectionFixture<ServicesFixture>
{
    public const string Name = "fine-tuning";
}

/// <summary>
/// A tenant with the simulator's embodiment, a tiny base checkpoint registered as <c>{Model}@v1</c> behind the
/// alias <c>production</c>, and helpers to upload datasets in parts and follow jobs.
/// </summary>
public sealed record FineTuningWorld(string Key, HttpClient Client, string Model, Guid BaseId)
{
    public static readonly SimEmbodiment Sim = SimEmbodiment.Tabletop;

    /// <summary>A small simulator dataset (4 expert episodes), generated once per test run, as a tar archive.</summary>
    public static Task<byte[]> SimDatasetTar => simTar.Value;

    private static readonly Lazy<Task<byte[]>> simTar = new(() => TarOfAsync(folder => DatasetGenerator.GenerateAsync(
        folder, new DatasetOptions(4, SimSplits.Train, [TaskKind.PickPlace, TaskKind.Push], 64))));

    /// <summary>Settings for a host that shares one artifact folder with trainer processes and polls Hangfire quickly.</summary>
    public static Dictionary<string, string?> Settings(string root, bool trainer) => new()
    {
        ["VlaCloud:Roles"] = trainer ? "api,trainer" : "api",
        ["VlaCloud:ArtifactsPath"] = Path.Combine(root, "artifacts"),
        ["VlaCloud:FineTuning:WorkPath"] = Path.Combine(root, "work-inproc"),
        ["VlaCloud:FineTuning:EvaluationEpisodes"] = "2",
        ["VlaCloud:FineTuning:EvaluationInferenceSteps"] = "2",
        ["VlaCloud:Jobs:QueuePollInterval"] = "00:00:00.500",
        ["VlaCloud:Jobs:InvisibilityTimeout"] = "00:00:08",
        ["VlaCloud:Jobs:DistributedLockTimeout"] = "00:00:05",
    };

    /// <summary>A tenant with the sim embodiment and a freshly initialised base (<paramref name="config"/>, tiny by default) as <c>MODEL@production</c>.</summary>
    public static async Task<FineTuningWorld> CreateAsync(VlaCloudAppFactory app, PolicyConfig? config = null)
    {
        config ??= PolicyConfig.Tiny;
        var (_, key) = await app.CreateTenantAsync();
        var client = app.CreateClient(key);
        var created = await client.PostAsJsonAsync("/v1/embodiments", new CreateEmbodimentRequest(
            Sim.Name, Sim.ActionDim, Sim.StateDim, "delta_eef+gripper", [.. Sim.Cameras.Select(c => new CameraDto(c.Name, c.Width, c.Height))],
            Sim.ControlHz, config.ChunkLength, [.. Sim.ActionNames], [.. Sim.StateNames], Simulator: SimEnvironments.Tabletop));
        Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());

        var stats = new Dictionary<string, NormalizationStats> { [Sim.Name] = TestPolicies.IdentityStats(Sim.ActionDim, Sim.StateDim, binaryActionDims: [2]) };
        var model = $"ft-{Guid.NewGuid():N}"[..12];
        var v1 = await RegisterBaseAsync(client, model, Sim.Name, config, stats);
        var alias = await client.PutAsJsonAsync($"/v1/models/{model}/aliases/production", new SetAliasRequest(v1.Id.ToString()));
        Assert.Equal(HttpStatusCode.OK, alias.StatusCode);
        return new FineTuningWorld(key, client, model, v1.Id);
    }

    /// <summary>Uploads a freshly initialised policy of <paramref name="config"/> and registers it as the next version of <paramref name="model"/> for <paramref name="embodiment"/>.</summary>
    public static async Task<CheckpointResponse> RegisterBaseAsync(HttpClient client, string model, string embodiment, PolicyConfig config, Dictionary<string, NormalizationStats> stats)
    {
        using var policy = VlaPolicy.Create(config, stats, seed: 3,
            tokenizerJson: config.Family == PolicyConfig.InternVlaM1Family ? TinyInternVlaM1.TokenizerJson() : null);
        return await RegisterPolicyAsync(client, model, embodiment, policy);
    }

    /// <summary>Uploads <paramref name="policy"/> and registers it as the next version of <see cref="Model"/> for the sim embodiment.</summary>
    public Task<CheckpointResponse> RegisterAsync(VlaPolicy policy) => RegisterPolicyAsync(Client, Model, Sim.Name, policy);

    /// <summary>Uploads <paramref name="policy"/> and registers it as the next version of <paramref name="model"/> for <paramref name="embodiment"/>.</summary>
    public static async Task<CheckpointResponse> RegisterPolicyAsync(HttpClient client, string model, string embodiment, VlaPolicy policy)
    {
        using var tar = new MemoryStream();
        policy.SaveTar(tar);
        using var content = new ByteArrayContent(tar.ToArray());
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        var put = await client.PostAsync("/v1/checkpoints/artifacts", content);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        var artifact = (await put.Content.ReadFromJsonAsync<ArtifactResponse>())!;
        var registered = await client.PostAsJsonAsync("/v1/checkpoints", new
        {
            model, embodiment, artifact_sha256 = artifact.Sha256,
            config = JsonDocument.Parse(policy.Config.ToJson()).RootElement,
            normalization_stats = JsonDocument.Parse(NormalizationStats.ToJson(policy.Normalization)).RootElement,
        });
        Assert.True(registered.StatusCode == HttpStatusCode.Created, await registered.Content.ReadAsStringAsync());
        return (await registered.Content.ReadFromJsonAsync<CheckpointResponse>())!;
    }

    /// <summary>The base config of a family for these tests: the tiny ST4VLA config or the tiny InternVLA-M1 one.</summary>
    public static PolicyConfig BaseConfig(string family) => family == PolicyConfig.InternVlaM1Family ? TinyInternVlaM1.PolicyConfig() : PolicyConfig.Tiny;

    /// <summary>Creates an upload, sends <paramref name="bytes"/> in <paramref name="parts"/> parts (last part first) and returns its id.</summary>
    public async Task<Guid> UploadPartsAsync(byte[] bytes, int parts, string purpose = "dataset", string? embodiment = "sim-tabletop", string? sha256 = null)
    {
        var created = await Client.PostAsJsonAsync("/v1/uploads", new CreateUploadRequest("sim.tar", bytes.Length, sha256 ?? Sha(bytes), purpose, "application/x-tar", embodiment));
        Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        var upload = (await created.Content.ReadFromJsonAsync<UploadResponse>())!;
        var size = (bytes.Length + parts - 1) / parts;
        for (var n = parts; n >= 1; n--)
        {
            var response = await PutPartAsync(upload.Id, n, bytes.AsSpan((n - 1) * size, Math.Min(size, bytes.Length - (n - 1) * size)).ToArray());
            Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        }
        return upload.Id;
    }

    public Task<HttpResponseMessage> PutPartAsync(Guid upload, int n, byte[] bytes)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return Client.PutAsync($"/v1/uploads/{upload}/parts/{n}", content);
    }

    public async Task<DatasetResponse> CompleteDatasetAsync(Guid upload)
    {
        var completed = await Client.PostAsJsonAsync($"/v1/uploads/{upload}/complete", new CompleteUploadRequest());
        Assert.True(completed.StatusCode == HttpStatusCode.OK, await completed.Content.ReadAsStringAsync());
        var body = (await completed.Content.ReadFromJsonAsync<UploadResponse>())!;
        Assert.Equal("completed", body.Status);
        return await WaitForDatasetAsync(body.DatasetId!.Value);
    }

    public async Task<DatasetResponse> WaitForDatasetAsync(Guid id)
    {
        DatasetResponse? dataset = null;
        await Eventually.TrueAsync(async () =>
        {
            dataset = await Client.GetFromJsonAsync<DatasetResponse>($"/v1/datasets/{id}");
            return dataset!.Status != "validating";
        }, TimeSpan.FromMinutes(2), $"dataset {id} still validating");
        return dataset!;
    }

    public async Task<FineTuningJobResponse> CreateJobAsync(
        Guid dataset, object hyperparameters, bool evaluate = false, string? promoteTo = null, int? evaluationEpisodes = null, string? from = null)
    {
        var created = await Client.PostAsJsonAsync("/v1/fine_tuning/jobs", new
        {
            @base = from ?? $"{Model}@production", dataset, model = Model, hyperparameters, evaluate, promote_to = promoteTo, evaluation_episodes = evaluationEpisodes,
        });
        Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        return (await created.Content.ReadFromJsonAsync<FineTuningJobResponse>())!;
    }

    public Task<FineTuningJobResponse?> GetJobAsync(Guid id) => Client.GetFromJsonAsync<FineTuningJobResponse>($"/v1/fine_tuning/jobs/{id}");

    public async Task<FineTuningJobResponse> WaitForJobAsync(Guid id, Func<FineTuningJobResponse, bool> done, TimeSpan timeout, string what)
    {
        FineTuningJobResponse? job = null;
        await Eventually.TrueAsync(async () =>
        {
            job = await GetJobAsync(id);
            if (job!.Status == "failed" && !done(job)) throw new Xunit.Sdk.XunitException($"job failed: {job.Error}");
            return done(job);
        }, timeout, () => $"{what}; job is {job?.Status} at step {job?.Step}");
        return job!;
    }

    public async Task<List<JobEventResponse>> EventsAsync(Guid id)
    {
        var all = new List<JobEventResponse>();
        long after = 0;
        while (true)
        {
            var page = (await Client.GetFromJsonAsync<ListPage<JobEventResponse>>($"/v1/fine_tuning/jobs/{id}/events?after={after}&limit=100"))!;
            all.AddRange(page.Data);
            if (!page.HasMore) return all;
            after = page.Data[^1].Id;
        }
    }

    public static string Sha(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>A tar of the folder <paramref name="make"/> fills.</summary>
    public static async Task<byte[]> TarOfAsync(Func<string, Task> make)
    {
        var folder = Directory.CreateTempSubdirectory("vlacloud-ds-").FullName;
        try
        {
            await make(folder);
            using var tar = new MemoryStream();
            await TarFile.CreateFromDirectoryAsync(folder, tar, includeBaseDirectory: false);
            return tar.ToArray();
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}

/// <summary>Polls a condition until it holds or a generous bound passes (a bound on correctness, not a speed check).</summary>
public static class Eventually
{
    public static Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, string message) => TrueAsync(condition, timeout, () => message);

    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<string> message)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException($"timed out after {timeout}: {message()}");
            await Task.Delay(250);
        }
    }
}
