using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using VlaCloud.Api.Tests.Registry;
using VlaCloud.Contracts;
using VlaCloud.Registry.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Inference;

[Collection(InferenceCollection.Name)]
public sealed class ActApiTests(ServicesFixture services)
{
    private VlaCloudAppFactory App(params (string Key, string Value)[] settings) =>
        new(services, settings.ToDictionary(s => s.Key, s => (string?)s.Value));

    [Fact]
    public async Task Concurrent_clients_batched_together_each_get_the_actions_they_would_get_alone()
    {
        await using var app = App(("VlaCloud:Inference:MaxQueueDelay", "00:00:00.200"), ("VlaCloud:Inference:IdleDispatch", "false"));
        using var world = await InferenceWorld.CreateAsync(app);

        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(v => world.Client.PostAsJsonAsync("/v1/act", world.Request(v, seed: 100 + v))));
        var results = new List<ActResponse>();
        foreach (var response in responses)
        {
            Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
            results.Add((await response.Content.ReadFromJsonAsync<ActResponse>())!);
        }

        Assert.Contains(results, r => r.Timing.BatchSize > 1);
        for (var v = 0; v < 8; v++)
        {
            var expected = world.Expected(v, 100 + v);
            Assert.Equal(expected.Horizon, results[v].Actions.Length);
            for (var step = 0; step < expected.Horizon; step++)
            {
                Assert.Equal(InferenceWorld.ActionDim, results[v].Actions[step].Length);
                for (var d = 0; d < InferenceWorld.ActionDim; d++) Assert.Equal(expected[step, d], results[v].Actions[step][d], 3);
            }
            Assert.Equal((world.Checkpoint.Id, 1, world.Embodiment), (results[v].Checkpoint.Id, results[v].Checkpoint.Version, results[v].Checkpoint.Embodiment));
            Assert.Equal(100 + v, results[v].Seed);
        }
    }

    [Fact]
    public async Task An_internvla_m1_checkpoint_is_served_batched_with_16_step_chunks_and_alone_equal_to_the_model()
    {
        await using var app = App(("VlaCloud:Inference:MaxQueueDelay", "00:00:00.200"), ("VlaCloud:Inference:IdleDispatch", "false"));
        using var world = await InferenceWorld.CreateInternVlaM1Async(app);

        // Batched: a [16, D] chunk each. DDIM's first steps divide the noise prediction by √ᾱ_t (≈ 0.01 at t = 99), so
        // the float rounding a batch changes (measured 0.05 in these units) is amplified far beyond the Euler steps of
        // the st4vla family; a batched sample is compared loosely, an unbatched one exactly.
        var responses = await Task.WhenAll(Enumerable.Range(0, 3).Select(v => world.Client.PostAsJsonAsync("/v1/act", world.Request(v, seed: 200 + v))));
        for (var v = 0; v < 3; v++)
        {
            Assert.True(responses[v].StatusCode == HttpStatusCode.OK, await responses[v].Content.ReadAsStringAsync());
            var result = (await responses[v].Content.ReadFromJsonAsync<ActResponse>())!;
            var expected = world.Expected(v, 200 + v);
            Assert.Equal(16, result.Actions.Length);
            for (var step = 0; step < 16; step++)
            {
                Assert.Equal(InferenceWorld.ActionDim, result.Actions[step].Length);
                for (var d = 0; d < InferenceWorld.ActionDim; d++) Assert.InRange(result.Actions[step][d], expected[step, d] - 0.25f, expected[step, d] + 0.25f);
            }
        }
        var single = (await (await world.Client.PostAsJsonAsync("/v1/act", world.Request(1, seed: 201))).Content.ReadFromJsonAsync<ActResponse>())!;
        var model = world.Expected(1, 201);
        for (var step = 0; step < 16; step++)
            for (var d = 0; d < InferenceWorld.ActionDim; d++) Assert.Equal(model[step, d], single.Actions[step][d], 3);

        // The guidance scale is a request option: without guidance the model gives other actions, and the service the same as the model.
        var unguided = await world.Client.PostAsJsonAsync("/v1/act", world.Request(0, seed: 200, new ActOptions(Steps: 4, Seed: 200, CfgScale: 1.0)));
        Assert.True(unguided.StatusCode == HttpStatusCode.OK, await unguided.Content.ReadAsStringAsync());
        var plain = (await unguided.Content.ReadFromJsonAsync<ActResponse>())!;
        var alone = world.Reference.SampleActions([world.PolicyObservation(0)], [200], 4, cfgScale: 1.0)[0];
        for (var step = 0; step < 16; step++)
            for (var d = 0; d < InferenceWorld.ActionDim; d++) Assert.Equal(alone[step, d], plain.Actions[step][d], 3);
        Assert.Contains(Enumerable.Range(0, 16), step => Math.Abs(plain.Actions[step][0] - world.Expected(0, 200)[step, 0]) > 1e-3);

        var refused = await world.Client.PostAsJsonAsync("/v1/act", world.Request(0, seed: 200, new ActOptions(CfgScale: 1000)));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("options.cfg_scale", await refused.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task An_internvla_m1_checkpoint_answers_a_spatial_question_with_qwen_json_read_back_into_the_cameras_pixels()
    {
        await using var app = App(("VlaCloud:Inference:MaxQueueDelay", "00:00:00.200"), ("VlaCloud:Inference:IdleDispatch", "false"));
        using var world = await InferenceWorld.CreateInternVlaM1Async(app, taught: true);

        // Two requests batched: the taught one and another observation, each answered as the model alone answers it.
        var responses = await Task.WhenAll(new[] { 0, 1 }.Select(v =>
            world.Client.PostAsJsonAsync("/v1/act", world.Request(v, seed: 200 + v, new ActOptions(Steps: 4, Seed: 200 + v, Spatial: "box")))));
        var results = new List<ActResponse>();
        foreach (var response in responses)
        {
            Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
            results.Add((await response.Content.ReadFromJsonAsync<ActResponse>())!);
        }
        for (var v = 0; v < 2; v++)
        {
            var alone = world.Reference.GenerateSpatial([world.PolicyObservation(v)], VlaCloud.Policy.SpatialKind.Box)[0];
            Assert.Equal("box", results[v].Spatial!.Kind);
            Assert.Equal(alone.Text, results[v].Spatial!.Text);
            Assert.Equal(alone.Points().Select(p => new[] { p.X, p.Y }), results[v].Spatial!.Points);
            Assert.Equal(16, results[v].Actions.Length);
        }

        // The taught answer: Qwen's JSON in the processor's 56×56 pixels, the points in the 64×64 camera's.
        var taught = results[0].Spatial!;
        var map = new VlaCloud.Policy.InternVla.Imaging.ImageCoordinateMap(64, 64, 56, 56);
        var box = InferenceWorld.TaughtBox;
        Assert.Equal(VlaCloud.Policy.InternVla.Text.QwenSpatialAnswer.Format([new(VlaCloud.Policy.SpatialKind.Box, box)], map), taught.Text);
        Assert.Equal(2, taught.Points.Length);
        Assert.All(taught.Points.SelectMany(p => p).Zip(box), c => Assert.InRange(c.First, c.Second - 1.5f, c.Second + 1.5f));

        // The JSON names the field "text".
        var json = await (await world.Client.PostAsJsonAsync("/v1/act", world.Request(0, seed: 200, new ActOptions(Steps: 4, Seed: 200, Spatial: "box")))).Content.ReadAsStringAsync();
        Assert.Equal(taught.Text, JsonDocument.Parse(json).RootElement.GetProperty("spatial").GetProperty("text").GetString());
        // Input bounds still apply to a spatial request.
        var unknown = await world.Client.PostAsJsonAsync("/v1/act", world.Request(0, seed: 200, new ActOptions(Spatial: "circle")));
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Contains("options.spatial", await unknown.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("box", 2)]
    [InlineData("placement", 1)]
    public async Task Png_images_and_a_spatial_answer_are_served(string kind, int points)
    {
        await using var app = App();
        using var world = await InferenceWorld.CreateAsync(app);
        var png = Png(64, 64);
        var request = new ActRequest(world.Checkpoint.Id.ToString(),
            new ObservationInput(InferenceWorld.Cameras.ToDictionary(c => c, _ => new ImageInput("png", png)), [0, 0, 0], "pick the red cube"),
            new ActOptions(Seed: 5, Spatial: kind));

        var response = await world.Client.PostAsJsonAsync("/v1/act", request);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var result = (await response.Content.ReadFromJsonAsync<ActResponse>())!;
        Assert.Equal(kind, result.Spatial!.Kind);
        Assert.Equal(points, result.Spatial.Points.Length);
        Assert.All(result.Spatial.Points.SelectMany(p => p), c => Assert.InRange(c, 0, 64));
        Assert.Null(result.Guide); // not a point-guided checkpoint
    }

    [Fact]
    public async Task A_point_guided_checkpoint_answers_with_the_points_its_actions_were_aimed_at()
    {
        await using var app = App();
        using var world = await InferenceWorld.CreateAsync(app, VlaCloud.Policy.PolicyConfig.Tiny with { PointGuidance = true });

        var response = await world.Client.PostAsJsonAsync("/v1/act", world.Request(2, seed: 9));
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var result = (await response.Content.ReadFromJsonAsync<ActResponse>())!;

        AssertServedAsThePolicyOutsideTheService(world, result, variant: 2, seed: 9);
        Assert.All(result.Guide!.Target!.Concat(result.Guide.Destination!), c => Assert.InRange(c, 0, 64));
    }

    /// <summary>
    /// The same points and actions as the policy gives outside the service: System 2's answers, then System 1 on them.
    /// </summary>
    private static void AssertServedAsThePolicyOutsideTheService(InferenceWorld world, ActResponse result, int variant, long seed)
    {
        var guide = world.Reference.GeneratePointGuides([world.PolicyObservation(variant)])[0];
        Assert.Equal(guide.Target, result.Guide!.Target);
        Assert.Equal(guide.Destination, result.Guide.Destination);
        var expected = world.Expected(variant, seed);
        for (var step = 0; step < expected.Horizon; step++)
            for (var d = 0; d < InferenceWorld.ActionDim; d++) Assert.Equal(expected[step, d], result.Actions[step][d], 3);
    }

    [Fact]
    public async Task A_point_guided_internvla_m1_checkpoint_acts_on_its_own_system_2s_points_and_returns_them()
    {
        await using var app = App();
        float[] target = [20, 30], destination = [44, 40];
        // System 2 taught the point and placement answers about variant 2, so the guide holds real points.
        using var world = await InferenceWorld.CreateAsync(app, VlaCloud.Parity.TinyInternVlaM1.PolicyConfig() with { PointGuidance = true }, policy =>
        {
            var input = InferenceWorld.Observation(2);
            var front = new VlaCloud.Policy.CameraImage(input.Images[InferenceWorld.Cameras[0]].Data, 64, 64);
            VlaCloud.Parity.TinyInternVlaM1.TeachSpatial(policy,
            [
                new VlaCloud.Policy.SpatialSample([front], VlaCloud.Policy.SpatialPrompts.Question(VlaCloud.Policy.SpatialKind.Point, input.Instruction), VlaCloud.Policy.SpatialKind.Point, target),
                new VlaCloud.Policy.SpatialSample([front], VlaCloud.Policy.SpatialPrompts.Question(VlaCloud.Policy.SpatialKind.Placement, input.Instruction), VlaCloud.Policy.SpatialKind.Placement, destination),
            ]);
        });

        var response = await world.Client.PostAsJsonAsync("/v1/act", world.Request(2, seed: 9));
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var result = (await response.Content.ReadFromJsonAsync<ActResponse>())!;

        AssertServedAsThePolicyOutsideTheService(world, result, variant: 2, seed: 9);
        Assert.All(result.Guide!.Target!.Zip(target), c => Assert.InRange(c.First, c.Second - 1.5f, c.Second + 1.5f));
        Assert.All(result.Guide.Destination!.Zip(destination), c => Assert.InRange(c.First, c.Second - 1.5f, c.Second + 1.5f));
    }

    public static TheoryData<string, Func<InferenceWorld, ActRequest>> InvalidRequests => new()
    {
        { "observation.state", w => w.Request(0) with { Observation = InferenceWorld.Observation(0) with { State = [1, 2] } } },
        { "observation.images.wrist", w => w.Request(0) with { Observation = InferenceWorld.Observation(0) with { Images = new Dictionary<string, ImageInput> { ["front"] = new("raw", InferenceWorld.Pixels(0), [64, 64, 3]) } } } },
        { "observation.images.top", w => w.Request(0) with { Observation = InferenceWorld.Observation(0) with { Images = InferenceWorld.Observation(0).Images.Append(new("top", new ImageInput("raw", InferenceWorld.Pixels(0), [64, 64, 3]))).ToDictionary() } } },
        { "observation.images.front", w => w.Request(0) with { Observation = InferenceWorld.Observation(0) with { Images = new Dictionary<string, ImageInput> { ["front"] = new("png", [1, 2, 3]), ["wrist"] = new("raw", InferenceWorld.Pixels(0), [64, 64, 3]) } } } },
        { "observation.images.wrist", w => w.Request(0) with { Observation = InferenceWorld.Observation(0) with { Images = new Dictionary<string, ImageInput> { ["front"] = new("raw", InferenceWorld.Pixels(0), [64, 64, 3]), ["wrist"] = new("raw", new byte[10], [64, 64, 3]) } } } },
        { "observation.images.front", w => w.Request(0) with { Observation = InferenceWorld.Observation(0) with { Images = new Dictionary<string, ImageInput> { ["front"] = new("raw", new byte[4 * 4 * 3], [4, 4, 3]), ["wrist"] = new("raw", InferenceWorld.Pixels(0), [64, 64, 3]) } } } },
        { "observation.instruction", w => w.Request(0) with { Observation = InferenceWorld.Observation(0) with { Instruction = " " } } },
        { "options.steps", w => w.Request(0, options: new ActOptions(Steps: 0)) },
        { "options.spatial", w => w.Request(0, options: new ActOptions(Spatial: "circle")) },
        { "options.timeout_ms", w => w.Request(0, options: new ActOptions(TimeoutMs: 0)) },
        { "options.resize", w => w.Request(0, options: new ActOptions(Resize: "crop")) },
        { "observation.images.front", w => w.Request(0) with { Observation = InferenceWorld.Observation(0) with { Images = WithFront(new ImageInput("png", Png(128, 128))) } } },
        { "observation.images.front", w => w.Request(0) with { Observation = InferenceWorld.Observation(0) with { Images = WithFront(new ImageInput("raw", new byte[64 * 32 * 3], [32, 64, 3])) } } },
        { "observation.images.front", w => w.Request(0) with { Observation = InferenceWorld.Observation(0) with { Images = WithFront(new ImageInput("png", Webp())) } } },
    };

    private static Dictionary<string, ImageInput> WithFront(ImageInput front) =>
        new() { ["front"] = front, ["wrist"] = new("raw", InferenceWorld.Pixels(0), [64, 64, 3]) };

    private static byte[] Webp()
    {
        using var bitmap = new SkiaSharp.SKBitmap(64, 64);
        using var data = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Webp, 100);
        return data.ToArray();
    }

    [Theory]
    [InlineData("png", "50000×50000")]
    [InlineData("jpeg", "16384×16384")]
    public async Task An_image_bomb_is_a_400_from_its_header_naming_the_camera(string format, string size)
    {
        await using var app = App();
        using var world = await InferenceWorld.CreateAsync(app);
        var bomb = format == "png" ? ImageBombs.Png() : ImageBombs.Jpeg();
        var response = await world.Client.PostAsJsonAsync("/v1/act", world.Request(0) with { Observation = InferenceWorld.Observation(0) with { Images = WithFront(new ImageInput(format, bomb)) } });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = (await response.Content.ReadFromJsonAsync<ValidationProblem>())!;
        Assert.StartsWith($"The image is {size}; camera 'front' takes at most 64×64", problem.Errors["observation.images.front"][0]);
    }

    [Fact]
    public async Task An_image_of_another_aspect_ratio_is_padded_or_stretched_when_options_resize_says_so()
    {
        await using var app = App();
        using var world = await InferenceWorld.CreateAsync(app);
        // A 64×32 front image for a 64×64 camera: refused as it is, served padded to 64×64 or as sent (the model stretches it).
        var wide = InferenceWorld.Pixels(3)[..(64 * 32 * 3)];
        var input = InferenceWorld.Observation(0) with { Images = WithFront(new ImageInput("raw", wide, [32, 64, 3])) };
        var refused = await world.Client.PostAsJsonAsync("/v1/act", new ActRequest($"{world.Model}@v1", input, new ActOptions(Steps: 4, Seed: 3)));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("options.resize", (await refused.Content.ReadFromJsonAsync<ValidationProblem>())!.Errors["observation.images.front"][0]);

        var padded = new byte[64 * 64 * 3];
        wide.CopyTo(padded, 16 * 64 * 3);
        foreach (var (resize, front) in new[] { ("pad", new VlaCloud.Policy.CameraImage(padded, 64, 64)), ("stretch", new VlaCloud.Policy.CameraImage(wide, 64, 32)) })
        {
            var response = await world.Client.PostAsJsonAsync("/v1/act", new ActRequest($"{world.Model}@v1", input, new ActOptions(Steps: 4, Seed: 3, Resize: resize)));
            Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
            var actions = (await response.Content.ReadFromJsonAsync<ActResponse>())!.Actions;
            var observation = world.PolicyObservation(0) with { Images = [front, new VlaCloud.Policy.CameraImage(InferenceWorld.Pixels(0), 64, 64)] };
            var expected = world.Reference.SampleActions(observation, 3, 4);
            for (var step = 0; step < expected.Horizon; step++)
                for (var d = 0; d < InferenceWorld.ActionDim; d++) Assert.Equal(expected[step, d], actions[step][d], 3);
        }
    }

    [Fact]
    public async Task A_body_that_would_swell_past_eight_times_its_size_once_decoded_is_a_400_naming_the_array()
    {
        await using var app = App();
        using var world = await InferenceWorld.CreateAsync(app);
        var body = JsonSerializer.Serialize(world.Request(0), JsonSerializerOptions.Web).Replace("\"state\":[", "\"state\":[" + string.Concat(Enumerable.Repeat("0,", 500_000)));
        var response = await world.Client.PostAsync("/v1/act", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = (await response.Content.ReadFromJsonAsync<ValidationProblem>())!;
        var (field, messages) = Assert.Single(problem.Errors);
        Assert.StartsWith("observation.state[", field);
        Assert.Contains("once decoded", messages[0]);
    }

    [Fact]
    public async Task A_checkpoint_that_cannot_be_served_answers_422_at_once_without_loading_again()
    {
        await using var app = App();
        using var world = await InferenceWorld.CreateAsync(app);
        // A checkpoint whose tokenizer.json no longer matches its manifest: registration's inspection does not hash the
        // files, the load does, and fails. Registered through the API, as a tenant would.
        var artifact = await world.Client.PutArtifactAsync(TamperedTar(world.Reference));
        var registered = await world.Client.PostAsJsonAsync("/v1/checkpoints", new
        {
            model = "tampered", embodiment = world.Embodiment, artifact_sha256 = artifact.Sha256, config = new { }, normalization_stats = new { },
        });
        Assert.True(registered.StatusCode == HttpStatusCode.Created, await registered.Content.ReadAsStringAsync());

        for (var i = 0; i < 3; i++)
        {
            var response = await world.Client.PostAsJsonAsync("/v1/act", world.Request(0) with { Checkpoint = "tampered@v1" });
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.UnprocessableEntity, body);
            Assert.True(body.Contains("tokenizer.json: size"), body);
        }
        var stats = app.Services.GetRequiredService<VlaCloud.Inference.InferenceEngine>().CacheStats.Single();
        Assert.Equal((1L, 2L), (stats.FailedLoads, stats.Refused));
    }

    [Fact]
    public async Task A_checkpoint_whose_artifact_is_gone_answers_503_with_retry_after()
    {
        await using var app = App();
        using var world = await InferenceWorld.CreateAsync(app);
        var artifact = await world.Client.PutArtifactAsync(Registry.RegistryClient.CheckpointTar());
        var registered = await world.Client.PostAsJsonAsync("/v1/checkpoints", new
        {
            model = "vanished", embodiment = world.Embodiment, artifact_sha256 = artifact.Sha256, config = new { }, normalization_stats = new { },
        });
        Assert.True(registered.StatusCode == HttpStatusCode.Created, await registered.Content.ReadAsStringAsync());
        var store = (VlaCloud.Registry.Artifacts.FileSystemArtifactStore)app.Services.GetRequiredService<VlaCloud.Registry.Artifacts.IArtifactStore>();
        File.Delete(store.PathOf(artifact.Sha256));

        var response = await world.Client.PostAsJsonAsync("/v1/act", world.Request(0) with { Checkpoint = "vanished@v1" });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.True(response.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
        Assert.Contains("is not in the artifact store", await response.Content.ReadAsStringAsync());
    }

    /// <summary>The policy's archive with tokenizer.json changed after its manifest was written.</summary>
    private static byte[] TamperedTar(VlaCloud.Policy.VlaPolicy policy)
    {
        var folder = Directory.CreateTempSubdirectory("vlacloud-tampered-").FullName;
        try
        {
            policy.Save(folder);
            File.AppendAllText(Path.Combine(folder, VlaCloud.Policy.PolicyCheckpoint.TokenizerFile), " ");
            using var tar = new MemoryStream();
            using (var writer = new System.Formats.Tar.TarWriter(tar, System.Formats.Tar.TarEntryFormat.Pax, leaveOpen: true))
                foreach (var name in VlaCloud.Policy.PolicyCheckpoint.ContentFiles.Append(VlaCloud.Policy.PolicyCheckpoint.ManifestFile))
                    writer.WriteEntry(Path.Combine(folder, name), name);
            return tar.ToArray();
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Theory]
    [MemberData(nameof(InvalidRequests))]
    public async Task Input_that_does_not_fit_the_embodiment_is_a_400_naming_the_field(string field, Func<InferenceWorld, ActRequest> request)
    {
        await using var app = App();
        using var world = await InferenceWorld.CreateAsync(app);
        var response = await world.Client.PostAsJsonAsync("/v1/act", request(world));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<ValidationProblem>();
        Assert.Contains(field, problem!.Errors.Keys);
    }

    [Fact]
    public async Task A_malformed_body_or_reference_is_a_400_and_an_unknown_checkpoint_a_404()
    {
        await using var app = App();
        using var world = await InferenceWorld.CreateAsync(app);

        var broken = await world.Client.PostAsync("/v1/act", new StringContent("{\"checkpoint\": ", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, broken.StatusCode);
        var badReference = await world.Client.PostAsJsonAsync("/v1/act", world.Request(0) with { Checkpoint = "not a reference!" });
        Assert.Equal(HttpStatusCode.BadRequest, badReference.StatusCode);
        var unknown = await world.Client.PostAsJsonAsync("/v1/act", world.Request(0) with { Checkpoint = $"{world.Model}@v9" });
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("application/problem+json", unknown.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Another_tenants_checkpoint_is_not_found_and_a_key_without_the_inference_scope_is_forbidden()
    {
        await using var app = App();
        using var world = await InferenceWorld.CreateAsync(app);
        var (_, otherKey) = await app.CreateTenantAsync();
        var other = app.CreateClient(otherKey);
        foreach (var reference in new[] { world.Checkpoint.Id.ToString(), $"{world.Model}@v1" })
            Assert.Equal(HttpStatusCode.NotFound, (await other.PostAsJsonAsync("/v1/act", world.Request(0) with { Checkpoint = reference })).StatusCode);

        var (_, readOnly) = await app.CreateTenantAsync(scopes: VlaCloud.Registry.ApiScopes.RegistryRead);
        Assert.Equal(HttpStatusCode.Forbidden, (await app.CreateClient(readOnly).PostAsJsonAsync("/v1/act", world.Request(0))).StatusCode);
    }

    [Fact]
    public async Task A_full_queue_answers_503_at_once_with_retry_after()
    {
        // A long queue delay and a large batch keep the first request waiting in the queue; its own deadline
        // is far beyond that delay (the default one would race it).
        await using var app = App(("VlaCloud:Inference:QueueCapacity", "1"), ("VlaCloud:Inference:MaxBatchSize", "64"), ("VlaCloud:Inference:MaxQueueDelay", "00:00:05"), ("VlaCloud:Inference:IdleDispatch", "false"));
        using var world = await InferenceWorld.CreateAsync(app);

        var waiting = world.Client.PostAsJsonAsync("/v1/act", world.Request(0, options: new ActOptions(Steps: 4, TimeoutMs: 120_000)));
        var engine = app.Services.GetRequiredService<VlaCloud.Inference.InferenceEngine>();
        while (engine.QueueDepth < 1) await Task.Delay(10);
        var refused = await world.Client.PostAsJsonAsync("/v1/act", world.Request(1));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.True(refused.Headers.RetryAfter?.Delta > TimeSpan.Zero);
        Assert.False(waiting.IsCompleted, "the refusal came while the queued request still waited: it did not queue behind it");
        Assert.Equal(HttpStatusCode.OK, (await waiting).StatusCode);
    }

    [Fact]
    public async Task A_request_whose_deadline_passes_in_the_queue_is_a_504_and_never_computed()
    {
        await using var app = App(("VlaCloud:Inference:MaxBatchSize", "64"), ("VlaCloud:Inference:MaxQueueDelay", "00:00:00.800"), ("VlaCloud:Inference:IdleDispatch", "false"));
        using var world = await InferenceWorld.CreateAsync(app);
        Assert.Equal(HttpStatusCode.OK, (await world.Client.PostAsJsonAsync("/v1/act", world.Request(0))).StatusCode);
        var engine = app.Services.GetRequiredService<VlaCloud.Inference.InferenceEngine>();
        var computed = engine.ComputedRequests;

        var late = await world.Client.PostAsJsonAsync("/v1/act", world.Request(1, options: new ActOptions(Steps: 4, TimeoutMs: 100)));
        Assert.Equal(HttpStatusCode.GatewayTimeout, late.StatusCode);
        Assert.Equal(computed, engine.ComputedRequests);
    }

    [Fact]
    public async Task Served_requests_are_metered_per_tenant()
    {
        await using var app = App();
        using var world = await InferenceWorld.CreateAsync(app);
        for (var i = 0; i < 3; i++) Assert.Equal(HttpStatusCode.OK, (await world.Client.PostAsJsonAsync("/v1/act", world.Request(i))).StatusCode);
        await app.Services.GetRequiredService<VlaCloud.Api.Acting.UsageBuffer>().FlushAsync(CancellationToken.None);

        var usage = await app.WithDbAsync(db => db.Set<UsageDay>().IgnoreQueryFilters().Where(u => u.CheckpointId == world.Checkpoint.Id).ToListAsync());
        var day = Assert.Single(usage);
        Assert.Equal(3, day.Requests);
        Assert.Equal(3 * VlaCloud.Policy.PolicyConfig.Tiny.ChunkLength, day.Actions);
    }

    internal static byte[] Png(int width, int height)
    {
        using var bitmap = new SkiaSharp.SKBitmap(width, height);
        bitmap.Erase(new SkiaSharp.SKColor(200, 30, 30));
        using var data = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    private sealed record ValidationProblem(Dictionary<string, string[]> Errors);

    [Fact]
    public async Task Moving_an_alias_is_seen_by_the_next_request_here_and_through_the_channel_from_another_replica()
    {
        await using var app = App();
        using var world = await InferenceWorld.CreateAsync(app);
        var v2 = await world.Client.PostAsJsonAsync("/v1/checkpoints", new
        {
            model = world.Model, embodiment = world.Embodiment, artifact_sha256 = world.Checkpoint.Sha256,
            config = JsonDocument.Parse(world.Reference.Config.ToJson()).RootElement,
            normalization_stats = JsonDocument.Parse(world.Checkpoint.NormalizationStats.GetRawText()).RootElement,
        });
        Assert.True(v2.StatusCode == HttpStatusCode.Created, await v2.Content.ReadAsStringAsync());
        var second = (await v2.Content.ReadFromJsonAsync<CheckpointResponse>())!;
        var alias = $"/v1/models/{world.Model}/aliases/prod";
        Assert.Equal(HttpStatusCode.OK, (await world.Client.PutAsJsonAsync(alias, new SetAliasRequest($"{world.Model}@v1"))).StatusCode);
        var request = world.Request(0) with { Checkpoint = $"{world.Model}@prod" };
        async Task<int> ServedVersionAsync()
        {
            var response = await world.Client.PostAsJsonAsync("/v1/act", request);
            Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
            return (await response.Content.ReadFromJsonAsync<ActResponse>())!.Checkpoint.Version;
        }

        // Resolved once, then from memory.
        var cache = app.Services.GetRequiredService<VlaCloud.Api.Acting.ResolutionCache>();
        Assert.Equal(1, await ServedVersionAsync());
        var misses = cache.Misses;
        Assert.Equal(1, await ServedVersionAsync());
        Assert.Equal(misses, cache.Misses);

        // Moved through the API of this replica: the very next request follows it.
        Assert.Equal(HttpStatusCode.OK, (await world.Client.PutAsJsonAsync(alias, new SetAliasRequest($"{world.Model}@v2"))).StatusCode);
        Assert.Equal(2, await ServedVersionAsync());

        // Moved by another replica: the row changes behind this one's back, and the message comes over Redis.
        await app.WithDbAsync(db => db.Aliases.IgnoreQueryFilters().Where(a => a.ModelName == world.Model && a.Name == "prod")
            .ExecuteUpdateAsync(s => s.SetProperty(a => a.CheckpointId, world.Checkpoint.Id)));
        var redis = app.Services.GetRequiredService<StackExchange.Redis.IConnectionMultiplexer>();
        var channel = app.Services.GetRequiredService<VlaCloud.Registry.RedisKeyspace>().Channel("apikeys:invalidate");
        var keys = app.Services.GetRequiredService<VlaCloud.Api.Keys.ApiKeyCache>();
        var received = keys.InvalidationsReceived;
        await redis.GetSubscriber().PublishAsync(channel, "resolutions");
        // The message arrives asynchronously: until then a request may still be answered from memory.
        var served = 2;
        for (var until = DateTime.UtcNow + TimeSpan.FromSeconds(30); served != 1 && DateTime.UtcNow < until; await Task.Delay(20))
            served = await ServedVersionAsync();
        Assert.Equal(1, served);
        Assert.Equal(received, keys.InvalidationsReceived); // not a key invalidation: cached keys stay
        Assert.NotEqual(second.Id, world.Checkpoint.Id);
    }

    [Theory]
    [InlineData("00:00:00")]
    [InlineData("00:00:00.250")]
    public async Task The_quota_is_checked_from_the_counter_the_rate_limit_script_read_in_the_same_round_trip(string leaseWindow)
    {
        // With admission leases on (the second case) the world's setup requests are fast enough to grow a lease, and a
        // request served from it checks the counter its lease read: the used-up month then refuses within one window.
        await using var app = App(("VlaCloud:Limits:MonthlyComputeMsQuota", "1000"), ("VlaCloud:Limits:LeaseWindow", leaseWindow));
        using var world = await InferenceWorld.CreateAsync(app);
        var tenantId = await app.WithDbAsync(db => db.Checkpoints.IgnoreQueryFilters().Where(c => c.Id == world.Checkpoint.Id).Select(c => c.TenantId!.Value).SingleAsync());
        var redis = app.Services.GetRequiredService<StackExchange.Redis.IConnectionMultiplexer>();
        Assert.Equal(HttpStatusCode.OK, (await world.Client.PostAsJsonAsync("/v1/act", world.Request(0))).StatusCode);

        // One /v1/act: the limiter's script, and no GET of the compute counter after it.
        var session = new StackExchange.Redis.Profiling.ProfilingSession();
        redis.RegisterProfiler(() => session);
        var served = await world.Client.PostAsJsonAsync("/v1/act", world.Request(1));
        var commands = session.FinishProfiling().Select(c => c.Command).ToList();
        redis.RegisterProfiler(() => null);
        Assert.True(served.StatusCode == HttpStatusCode.OK, await served.Content.ReadAsStringAsync());
        Assert.DoesNotContain("GET", commands);
        if (TimeSpan.Parse(leaseWindow, System.Globalization.CultureInfo.InvariantCulture) == TimeSpan.Zero)
            Assert.Contains(commands, c => c is "EVAL" or "EVALSHA");

        // The counter the script read refuses once the month is used up: 429 with the quota's headers, nothing computed.
        string counterKey;
        using (var scope = app.Services.CreateScope())
            counterKey = scope.ServiceProvider.GetRequiredService<VlaCloud.Api.Usage.IUsageMeter>().ComputeCounter(tenantId).Key!;
        await redis.GetDatabase().StringSetAsync(counterKey, 5000, TimeSpan.FromMinutes(5));
        await Task.Delay(TimeSpan.Parse(leaseWindow, System.Globalization.CultureInfo.InvariantCulture) * 1.5);
        var refused = await world.Client.PostAsJsonAsync("/v1/act", world.Request(2));
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Contains("monthly compute quota", await refused.Content.ReadAsStringAsync());
        Assert.Equal("\"compute\";q=1000", refused.Headers.GetValues("RateLimit-Policy").Single());
        Assert.StartsWith("\"compute\";r=0;", refused.Headers.GetValues("RateLimit").Single());
        Assert.Contains(ProblemTypes.QuotaExceeded, await refused.Content.ReadAsStringAsync());
        Assert.True(int.Parse(refused.Headers.GetValues("Retry-After").Single()) >= 1);
    }
}
