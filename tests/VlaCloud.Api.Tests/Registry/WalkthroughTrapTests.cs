using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using VlaCloud.Api.Apis;
using VlaCloud.Registry.Entities;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Registry;

/// <summary>The traps a new team walked into (issue 25), each refused or reported plainly now.</summary>
[Collection(RegistryCollection.Name)]
public sealed class WalkthroughTrapTests(ServicesFixture services)
{
    [Fact]
    public async Task A_tenant_embodiment_may_not_take_a_public_embodiment_name_and_the_409_names_the_clash()
    {
        await using var app = new VlaCloudAppFactory(services);
        var publicName = $"public-{Guid.NewGuid():N}"[..16];
        await app.WithDbAsync(async db =>
        {
            db.Embodiments.Add(new Embodiment
            {
                Name = publicName, ActionDim = 3, ActionSpace = "delta_eef+gripper", Cameras = [new EmbodimentCamera { Name = "main", Width = 96, Height = 96 }],
                ControlHz = 10, ChunkLength = 8,
            });
            return await db.SaveChangesAsync();
        });
        var (_, key) = await app.CreateTenantAsync();
        var client = app.CreateClient(key);

        var response = await client.PostAsJsonAsync("/v1/embodiments", new CreateEmbodimentRequest(
            publicName, 7, 0, "delta_eef+gripper", [new CameraDto("primary", 224, 224)], 10, 16, null));

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Contains(publicName, problem.GetProperty("detail").GetString());
        Assert.Contains("public embodiment", problem.GetProperty("detail").GetString());
        Assert.Equal("name", problem.GetProperty("field").GetString());
        // The name still means the public embodiment for this tenant.
        var listed = await client.GetStringAsync("/v1/embodiments?limit=100");
        Assert.Single(JsonDocument.Parse(listed).RootElement.GetProperty("data").EnumerateArray(), e => e.GetProperty("name").GetString() == publicName);
    }

    [Fact]
    public async Task A_fine_tune_onto_an_embodiment_of_another_layout_is_refused_unless_the_job_asks_for_a_new_head()
    {
        await using var app = new VlaCloudAppFactory(services);
        var a = await RegistryClient.CreateWorldAsync(app);
        var created = await a.Client.PostAsJsonAsync("/v1/embodiments", new CreateEmbodimentRequest(
            $"four-{Guid.NewGuid():N}"[..12], 4, 2, "joint", [new CameraDto("wrist", 128, 96)], 10, 16, null));
        var other = (await created.Content.ReadFromJsonAsync<EmbodimentResponse>())!;
        var datasetId = await app.WithDbAsync(async db =>
        {
            var dataset = new Dataset { TenantId = a.TenantId, Name = "d.tar", EmbodimentId = other.Id, ArtifactSha256 = a.Artifact.Sha256, Status = DatasetStatus.Ready };
            db.Datasets.Add(dataset);
            await db.SaveChangesAsync();
            return dataset.Id;
        });

        var refused = await a.Client.PostAsJsonAsync("/v1/fine_tuning/jobs", new { @base = a.V1.Id.ToString(), dataset = datasetId, model = a.Model });

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        var problem = await refused.Content.ReadFromJsonAsync<JsonElement>();
        var message = problem.GetProperty("errors").GetProperty("base")[0].GetString()!;
        Assert.Contains("action size 7 vs 4", message);
        Assert.Contains("state size 0 vs 2", message);
        Assert.Contains("cameras [primary 224×224] vs [wrist 128×96]", message);
        Assert.Contains("new_head", message);

        var accepted = await a.Client.PostAsJsonAsync("/v1/fine_tuning/jobs", new { @base = a.V1.Id.ToString(), dataset = datasetId, model = a.Model, new_head = true });
        Assert.Equal(HttpStatusCode.Created, accepted.StatusCode);

        // Same layout, other embodiment: a fine-tune as before, no flag needed.
        var twin = await a.Client.CreateEmbodimentAsync();
        var twinDataset = await app.WithDbAsync(async db =>
        {
            var dataset = new Dataset { TenantId = a.TenantId, Name = "t.tar", EmbodimentId = twin.Id, ArtifactSha256 = a.Artifact.Sha256, Status = DatasetStatus.Ready };
            db.Datasets.Add(dataset);
            await db.SaveChangesAsync();
            return dataset.Id;
        });
        var sameLayout = await a.Client.PostAsJsonAsync("/v1/fine_tuning/jobs", new { @base = a.V1.Id.ToString(), dataset = twinDataset, model = a.Model });
        Assert.Equal(HttpStatusCode.Created, sameLayout.StatusCode);
    }

    [Fact]
    public async Task A_job_that_saved_states_but_never_resumed_reports_its_last_saved_step_and_no_resume()
    {
        await using var app = new VlaCloudAppFactory(services);
        var a = await RegistryClient.CreateWorldAsync(app);
        var (fresh, resumed) = await app.WithDbAsync(async db =>
        {
            var dataset = new Dataset { TenantId = a.TenantId, Name = "d.tar", EmbodimentId = a.Embodiment.Id, ArtifactSha256 = a.Artifact.Sha256, Status = DatasetStatus.Ready };
            FineTuningJob Job(int saved, int? from) => new()
            {
                TenantId = a.TenantId, Model = a.Model, BaseCheckpointId = a.V1.Id, DatasetId = dataset.Id, EmbodimentId = a.Embodiment.Id,
                Hyperparameters = "{}", TotalSteps = 100, Step = 40, LastSavedStep = saved, ResumedFromStep = from, Status = FineTuningJobStatus.Running,
            };
            var (f, r) = (Job(30, null), Job(30, 20));
            db.AddRange(dataset, f, r);
            await db.SaveChangesAsync();
            return (f.Id, r.Id);
        });

        var freshJob = await a.Client.GetFromJsonAsync<JsonElement>($"/v1/fine_tuning/jobs/{fresh}");
        Assert.Equal(30, freshJob.GetProperty("last_saved_step").GetInt32());
        Assert.Equal(JsonValueKind.Null, freshJob.GetProperty("resumed_from_step").ValueKind);
        Assert.False(freshJob.TryGetProperty("resume_step", out _));
        var resumedJob = await a.Client.GetFromJsonAsync<JsonElement>($"/v1/fine_tuning/jobs/{resumed}");
        Assert.Equal(20, resumedJob.GetProperty("resumed_from_step").GetInt32());
    }
}
