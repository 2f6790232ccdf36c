using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using VlaCloud.Registry.Entities;
using VlaCloud.Sim;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Registry;

/// <summary>What an embodiment can do is stored on it (issue 24): its simulator and its binary action dimensions.</summary>
[Collection(RegistryCollection.Name)]
public sealed class EmbodimentCapabilityTests(ServicesFixture services)
{
    private static readonly SimEmbodiment Robot = SimEmbodiment.Tabletop;

    private static CreateEmbodimentRequest SimShaped(string name, string? simulator, int cameraSize = 64, int[]? binary = null) => new(
        name, Robot.ActionDim, Robot.StateDim, "delta_xy+gripper", [.. Robot.Cameras.Select(c => new CameraDto(c.Name, cameraSize, cameraSize))],
        Robot.ControlHz, Robot.ChunkLength, [.. Robot.ActionNames], [.. Robot.StateNames], Simulator: simulator, BinaryActionDims: binary);

    private static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 9)];

    [Fact]
    public async Task An_embodiment_names_only_a_known_simulator_whose_robot_has_its_layout_and_shows_it_with_its_binary_dims()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (_, key) = await app.CreateTenantAsync();
        var client = app.CreateClient(key);

        async Task<string> RefusedAsync(CreateEmbodimentRequest request, string field)
        {
            var response = await client.PostAsJsonAsync("/v1/embodiments", request);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
            return problem.GetProperty("errors").GetProperty(field)[0].GetString()!;
        }

        Assert.Contains("sim-tabletop", await RefusedAsync(SimShaped(Unique("gz"), "gazebo-kitchen"), "simulator"));
        Assert.Contains("camera 'main' 64×64 missing", await RefusedAsync(SimShaped(Unique("big"), SimEnvironments.Tabletop, cameraSize: 96), "simulator"));
        var arm = new CreateEmbodimentRequest(Unique("arm"), 7, 0, "joint", [new CameraDto("main", 64, 64)], 10, 8, Simulator: SimEnvironments.Tabletop);
        Assert.Contains("action_dim 7", await RefusedAsync(arm, "simulator"));
        Assert.Contains("action dimension", await RefusedAsync(SimShaped(Unique("b"), null, binary: [3]), "binary_action_dims"));
        Assert.Contains("repeat", await RefusedAsync(SimShaped(Unique("b"), null, binary: [2, 2]), "binary_action_dims"));

        var created = await client.PostAsJsonAsync("/v1/embodiments", SimShaped(Unique("table"), SimEnvironments.Tabletop));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var sim = (await created.Content.ReadFromJsonAsync<EmbodimentResponse>())!;
        Assert.Equal("sim-tabletop", sim.Simulator);
        Assert.Equal([2], sim.BinaryActionDims); // omitted: the dimension named gripper
        var read = await client.GetFromJsonAsync<JsonElement>($"/v1/embodiments/{sim.Id}");
        Assert.Equal("sim-tabletop", read.GetProperty("simulator").GetString());
        Assert.Equal([2], read.GetProperty("binary_action_dims").EnumerateArray().Select(d => d.GetInt32()));

        // Named and shaped like the simulator's robot, but naming no simulator: a real robot, with no binary dims when told so.
        var lookalike = (await (await client.PostAsJsonAsync("/v1/embodiments", SimShaped(Unique("real"), null, binary: []))).Content.ReadFromJsonAsync<EmbodimentResponse>())!;
        Assert.Null(lookalike.Simulator);
        Assert.Empty(lookalike.BinaryActionDims);
    }

    [Fact]
    public async Task Evaluate_is_refused_for_an_embodiment_naming_no_simulator_and_accepted_for_one_whose_simulator_column_says_sim_tabletop()
    {
        await using var app = new VlaCloudAppFactory(services);
        var a = await RegistryClient.CreateWorldAsync(app);

        async Task<HttpResponseMessage> EvaluateOnAsync(CreateEmbodimentRequest embodiment)
        {
            var created = (await (await a.Client.PostAsJsonAsync("/v1/embodiments", embodiment)).Content.ReadFromJsonAsync<EmbodimentResponse>())!;
            var datasetId = await app.WithDbAsync(async db =>
            {
                var dataset = new Dataset { TenantId = a.TenantId, Name = "d.tar", EmbodimentId = created.Id, ArtifactSha256 = a.Artifact.Sha256, Status = DatasetStatus.Ready };
                db.Datasets.Add(dataset);
                await db.SaveChangesAsync();
                return dataset.Id;
            });
            // The base is the world's 7-action arm: new_head retargets it, so only the evaluation check is left to decide.
            return await a.Client.PostAsJsonAsync("/v1/fine_tuning/jobs",
                new { @base = a.V1.Id.ToString(), dataset = datasetId, model = a.Model, new_head = true, evaluate = true, evaluation_episodes = 1 });
        }

        var onArm = await a.Client.PostAsJsonAsync("/v1/fine_tuning/jobs", new
        {
            @base = a.V1.Id.ToString(), model = a.Model, evaluate = true,
            dataset = await app.WithDbAsync(async db =>
            {
                var dataset = new Dataset { TenantId = a.TenantId, Name = "arm.tar", EmbodimentId = a.Embodiment.Id, ArtifactSha256 = a.Artifact.Sha256, Status = DatasetStatus.Ready };
                db.Datasets.Add(dataset);
                await db.SaveChangesAsync();
                return dataset.Id;
            }),
        });
        Assert.Equal(HttpStatusCode.BadRequest, onArm.StatusCode);
        var problem = await onArm.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Contains("names none", problem.GetProperty("errors").GetProperty("evaluate")[0].GetString());

        // The simulator's exact shape without the column is no simulator embodiment; with it, it is, whatever its name.
        Assert.Equal(HttpStatusCode.BadRequest, (await EvaluateOnAsync(SimShaped(Unique("shape"), null))).StatusCode);
        var accepted = await EvaluateOnAsync(SimShaped(Unique("named"), SimEnvironments.Tabletop));
        Assert.True(accepted.StatusCode == HttpStatusCode.Created, await accepted.Content.ReadAsStringAsync());
    }
}
