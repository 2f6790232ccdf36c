using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using VlaCloud.Api.Apis;
using VlaCloud.Contracts;
using VlaCloud.Parity;
using VlaCloud.Policy;
using VlaCloud.Testing;
using VlaCloud.Actions;

namespace VlaCloud.Api.Tests.Inference;

/// <summary>Inference tests: REST act, WebSocket streams, openpi.</summary>
[CollectionDefinition(Name)]
public sealed class InferenceCollection : ICollectionFixture<ServicesFixture>
{
    public const string Name = "inference";
}

/// <summary>
/// A tenant with an embodiment (two cameras, a 3-value state, 4 actions) and a real tiny policy registered
/// for it through the API, as a customer would: artifact put, then registered with the artifact's own metadata.
/// </summary>
public sealed record InferenceWorld(string Key, HttpClient Client, string Model, string Embodiment, CheckpointResponse Checkpoint, VlaPolicy Reference) : IDisposable
{
    public const int ActionDim = 4;
    public const int StateDim = 3;
    public static readonly string[] Cameras = ["front", "wrist"];

    /// <summary>The box an M1 world taught to answer (<see cref="CreateInternVlaM1Async"/>) for variant 0, in the front camera's pixels.</summary>
    public static readonly float[] TaughtBox = [8, 16, 40, 48];

    /// <summary>
    /// The world with a tiny InternVLA-M1 policy (sizes from the fixtures, the release's 16-step chunk). Taught, its
    /// System 2 has memorised <see cref="TaughtBox"/> as the box answer about variant 0 before being registered.
    /// </summary>
    public static Task<InferenceWorld> CreateInternVlaM1Async(VlaCloudAppFactory app, bool taught = false) =>
        CreateAsync(app, TinyInternVlaM1.PolicyConfig(), taught ? TeachBox : null);

    private static void TeachBox(VlaPolicy policy)
    {
        var input = Observation(0);
        var front = new CameraImage(input.Images[Cameras[0]].Data, 64, 64);
        TinyInternVlaM1.TeachSpatial(policy, [new SpatialSample([front], SpatialPrompts.Question(SpatialKind.Box, input.Instruction), SpatialKind.Box, TaughtBox)]);
    }

    public static async Task<InferenceWorld> CreateAsync(VlaCloudAppFactory app, PolicyConfig? config = null, Action<VlaPolicy>? prepare = null)
    {
        config ??= PolicyConfig.Tiny;
        var (_, key) = await app.CreateTenantAsync();
        var client = app.CreateClient(key);
        var embodiment = $"arm-{Guid.NewGuid():N}"[..12];
        var created = await client.PostAsJsonAsync("/v1/embodiments", new CreateEmbodimentRequest(
            embodiment, ActionDim, StateDim, "delta_eef+gripper", Cameras.Select(c => new CameraDto(c, 64, 64)).ToList(), 10, config.ChunkLength));
        Assert.True(created.StatusCode == HttpStatusCode.Created, $"POST /v1/embodiments: {(int)created.StatusCode} {await created.Content.ReadAsStringAsync()}");

        var stats = new Dictionary<string, NormalizationStats> { [embodiment] = Stats() };
        var policy = VlaPolicy.Create(config, stats, seed: 7,
            tokenizerJson: config.Family == PolicyConfig.InternVlaM1Family ? TinyInternVlaM1.TokenizerJson() : null);
        // Upstream zero-initialises the DiT's output layer, which makes the actions a function of the noise alone; a
        // trained head is not zero, and only then do the images, the prompt and the guidance scale show in the actions.
        using (TorchSharp.torch.no_grad())
            foreach (var (_, p) in policy.NamedParameters().Where(p => p.Name.StartsWith("action_model.net.final_layer.", StringComparison.Ordinal)))
                p.normal_(0, 0.2);
        prepare?.Invoke(policy);
        using var tar = new MemoryStream();
        policy.SaveTar(tar);
        using var content = new ByteArrayContent(tar.ToArray());
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        var put = await client.PostAsync("/v1/checkpoints/artifacts", content);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        var artifact = (await put.Content.ReadFromJsonAsync<ArtifactResponse>())!;

        var model = $"m-{Guid.NewGuid():N}"[..10];
        var registered = await client.PostAsJsonAsync("/v1/checkpoints", new
        {
            model,
            embodiment,
            artifact_sha256 = artifact.Sha256,
            config = JsonDocument.Parse(policy.Config.ToJson()).RootElement,
            normalization_stats = JsonDocument.Parse(NormalizationStats.ToJson(stats)).RootElement,
        });
        Assert.True(registered.StatusCode == HttpStatusCode.Created, await registered.Content.ReadAsStringAsync());
        var checkpoint = (await registered.Content.ReadFromJsonAsync<CheckpointResponse>())!;
        return new InferenceWorld(key, client, model, embodiment, checkpoint, policy);
    }

    public ActRequest Request(int variant, long seed = 42, ActOptions? options = null) =>
        new($"{Model}@v1", Observation(variant), options ?? new ActOptions(Steps: 4, Seed: seed));

    public static ObservationInput Observation(int variant) => new(
        Cameras.ToDictionary(c => c, c => new ImageInput("raw", Pixels(variant + c.Length), [64, 64, 3])),
        [0.1f * variant, -0.2f, 0.3f],
        variant % 2 == 0 ? "pick the red cube and place it in the blue bowl" : "push the green ball to the yellow square");

    /// <summary>What the model computes for the same input, alone, outside the service.</summary>
    public ActionChunk Expected(int variant, long seed, int steps = 4) => Reference.SampleActions(PolicyObservation(variant), seed, steps);

    /// <summary>The policy's view of <see cref="Observation"/>.</summary>
    public Observation PolicyObservation(int variant)
    {
        var input = Observation(variant);
        return new Observation([.. Cameras.Select(c => new CameraImage(input.Images[c].Data, 64, 64))], input.Instruction, input.State, Embodiment);
    }

    public static byte[] Pixels(int variant)
    {
        var pixels = new byte[64 * 64 * 3];
        for (var i = 0; i < pixels.Length; i++) pixels[i] = (byte)((i * (variant + 5)) % 253);
        return pixels;
    }

    private static NormalizationStats Stats()
    {
        static FeatureStats Feature(int dim) => new(new float[dim], Enumerable.Repeat(1f, dim).ToArray(),
            Enumerable.Repeat(-2f, dim).ToArray(), Enumerable.Repeat(2f, dim).ToArray());
        return new NormalizationStats(Feature(ActionDim), Feature(StateDim));
    }

    public void Dispose() => Reference.Dispose();
}
