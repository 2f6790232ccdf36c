using System.Net;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using VlaCloud.Api.Apis;
using VlaCloud.Registry.Entities;
using VlaCloud.Api.Usage;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Registry;

[Collection(RegistryCollection.Name)]
public sealed class TenantIsolationTests(ServicesFixture services)
{
    /// <summary>Routes that act on no tenant's resources, with the reason.</summary>
    private static readonly Dictionary<string, string> Exempt = new()
    {
        ["GET /healthz"] = "probe, anonymous",
        ["GET /readyz"] = "probe, anonymous",
        ["GET /metrics"] = "operator metrics, no tenant data",
        ["POST /v1/admin/tenants"] = "platform admin, cross-tenant by design",
        ["GET /v1/admin/tenants"] = "platform admin",
        ["GET /v1/admin/tenants/{id:guid}"] = "platform admin",
        ["PATCH /v1/admin/tenants/{id:guid}"] = "platform admin",
        ["POST /v1/admin/tenants/{id:guid}/api-keys"] = "platform admin",
        ["GET /v1/admin/tenants/{id:guid}/api-keys"] = "platform admin",
        ["DELETE /v1/admin/tenants/{id:guid}/api-keys/{keyId:guid}"] = "platform admin",
        ["POST /v1/admin/api-keys"] = "platform admin's own keys",
        ["GET /v1/admin/api-keys"] = "platform admin's own keys",
        ["DELETE /v1/admin/api-keys/{keyId:guid}"] = "platform admin's own keys",
        ["GET /console"] = "the console's static page, anonymous",
        ["GET /console/{file}"] = "the console's static files, anonymous",
        ["POST /console/session"] = "sign-in: exchanges a key for a session of that key's tenant",
        ["GET /console/session"] = "the caller's own session",
        ["DELETE /console/session"] = "signs the caller's own session out",
    };

    /// <summary>For each tenant route: tenant B's request aimed at tenant A's resources, and what must hold.</summary>
    private static readonly Dictionary<string, Func<TenantWorld, HttpClient, Task>> Probes = new()
    {
        ["GET /v1/embodiments"] = async (a, b) => Assert.DoesNotContain(a.Embodiment.Id.ToString(), await b.GetStringAsync("/v1/embodiments?limit=100")),
        ["GET /v1/embodiments/{id:guid}"] = async (a, b) => await Expect404(b.GetAsync($"/v1/embodiments/{a.Embodiment.Id}")),
        // Names are per tenant: reusing A's name must work and so reveal nothing.
        ["POST /v1/embodiments"] = async (a, b) => await b.CreateEmbodimentAsync(a.Embodiment.Name),
        ["GET /v1/checkpoints"] = async (a, b) =>
        {
            var page = await b.GetFromJsonAsync<ListPage<CheckpointResponse>>($"/v1/checkpoints?model={a.Model}");
            Assert.Empty(page!.Data);
        },
        ["GET /v1/checkpoints/{id:guid}"] = async (a, b) => await Expect404(b.GetAsync($"/v1/checkpoints/{a.V1.Id}")),
        ["GET /v1/checkpoints/{id:guid}/content"] = async (a, b) =>
        {
            await Expect404(b.GetAsync($"/v1/checkpoints/{a.V1.Id}/content"));
            // A range or a matching ETag must not reveal the artifact either.
            using var ranged = new HttpRequestMessage(HttpMethod.Get, $"/v1/checkpoints/{a.V1.Id}/content");
            ranged.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(0, 9);
            ranged.Headers.IfNoneMatch.Add(new System.Net.Http.Headers.EntityTagHeaderValue($"\"{a.Artifact.Sha256}\""));
            await Expect404(b.SendAsync(ranged));
        },
        ["GET /v1/checkpoints/resolve"] = async (a, b) =>
        {
            await Expect404(b.GetAsync($"/v1/checkpoints/resolve?ref={a.V1.Id}"));
            await Expect404(b.GetAsync($"/v1/checkpoints/resolve?ref={a.Model}@v1"));
            await Expect404(b.GetAsync($"/v1/checkpoints/resolve?ref={a.Model}@production"));
        },
        ["POST /v1/checkpoints/artifacts"] = async (_, b) => await b.PutArtifactAsync(),
        ["POST /v1/checkpoints"] = async (a, b) =>
        {
            var own = await b.CreateEmbodimentAsync();
            var ownArtifact = await b.PutArtifactAsync();
            await Expect404(b.PostRegistrationAsync(a.Model, own.Name, a.Artifact.Sha256));
            await Expect404(b.PostRegistrationAsync(a.Model, a.Embodiment.Id.ToString(), ownArtifact.Sha256));
            await Expect404(b.PostRegistrationAsync(a.Model, own.Name, ownArtifact.Sha256, a.V1.Id));
        },
        ["GET /v1/models/{model}/aliases"] = async (a, b) =>
        {
            var page = await b.GetFromJsonAsync<ListPage<AliasResponse>>($"/v1/models/{a.Model}/aliases");
            Assert.Empty(page!.Data);
        },
        ["GET /v1/models/{model}/aliases/{alias}"] = async (a, b) => await Expect404(b.GetAsync($"/v1/models/{a.Model}/aliases/production")),
        ["GET /v1/models/{model}/aliases/{alias}/history"] = async (a, b) => await Expect404(b.GetAsync($"/v1/models/{a.Model}/aliases/production/history")),
        ["PUT /v1/models/{model}/aliases/{alias}"] = async (a, b) =>
            await Expect404(b.PutAsJsonAsync($"/v1/models/{a.Model}/aliases/production", new SetAliasRequest(a.V2.Id.ToString()))),
        ["POST /v1/models/{model}/aliases/{alias}/rollback"] = async (a, b) =>
            await Expect404(b.PostAsJsonAsync($"/v1/models/{a.Model}/aliases/production/rollback", new RollbackAliasRequest())),
        ["DELETE /v1/models/{model}/aliases/{alias}"] = async (a, b) => await Expect404(b.DeleteAsync($"/v1/models/{a.Model}/aliases/production")),
        ["POST /v1/act"] = async (a, b) =>
        {
            foreach (var reference in new[] { a.V1.Id.ToString(), $"{a.Model}@v1", $"{a.Model}@production" })
                await Expect404(b.PostAsJsonAsync("/v1/act", new { checkpoint = reference, observation = new { images = new { }, instruction = "x" } }));
        },
        // Streams resolve their checkpoint before the upgrade, so a plain GET shows what an upgrade would get.
        ["GET /v1/stream"] = async (a, b) => await Expect404(b.GetAsync($"/v1/stream?checkpoint={a.Model}@production")),
        ["GET /v1/openpi/{**checkpoint}"] = async (a, b) => await Expect404(b.GetAsync($"/v1/openpi/{a.V1.Id}")),
        ["POST /v1/checkpoints/imports"] = async (a, b) =>
            await Expect404(b.PostAsJsonAsync("/v1/checkpoints/imports", new { model = a.Model, upload = fineTuning!.UploadId, embodiment = a.Embodiment.Id })),
        ["GET /v1/checkpoints/imports/{id:guid}"] = async (_, b) => await Expect404(b.GetAsync($"/v1/checkpoints/imports/{fineTuning!.ImportId}")),
        ["POST /v1/uploads"] = async (a, b) =>
            await Expect404(b.PostAsJsonAsync("/v1/uploads", new CreateUploadRequest("x.tar", 10, new string('a', 64), "dataset", Embodiment: a.Embodiment.Id.ToString()))),
        ["GET /v1/uploads/{id:guid}"] = async (_, b) => await Expect404(b.GetAsync($"/v1/uploads/{fineTuning!.UploadId}")),
        ["PUT /v1/uploads/{id:guid}/parts/{n:int}"] = async (_, b) =>
            await Expect404(b.PutAsync($"/v1/uploads/{fineTuning!.UploadId}/parts/1", new ByteArrayContent([1, 2, 3]))),
        ["POST /v1/uploads/{id:guid}/complete"] = async (_, b) =>
            await Expect404(b.PostAsJsonAsync($"/v1/uploads/{fineTuning!.UploadId}/complete", new CompleteUploadRequest())),
        ["POST /v1/uploads/{id:guid}/cancel"] = async (_, b) => await Expect404(b.PostAsync($"/v1/uploads/{fineTuning!.UploadId}/cancel", null)),
        ["GET /v1/datasets"] = async (_, b) => Assert.DoesNotContain(fineTuning!.DatasetId.ToString(), await b.GetStringAsync("/v1/datasets?limit=100")),
        ["GET /v1/datasets/{id:guid}"] = async (_, b) => await Expect404(b.GetAsync($"/v1/datasets/{fineTuning!.DatasetId}")),
        ["POST /v1/fine_tuning/jobs"] = async (a, b) =>
            await Expect404(b.PostAsJsonAsync("/v1/fine_tuning/jobs", new { @base = a.V1.Id.ToString(), dataset = fineTuning!.DatasetId, model = a.Model })),
        ["GET /v1/fine_tuning/jobs"] = async (_, b) => Assert.DoesNotContain(fineTuning!.JobId.ToString(), await b.GetStringAsync("/v1/fine_tuning/jobs?limit=100")),
        ["GET /v1/fine_tuning/jobs/{id:guid}"] = async (_, b) => await Expect404(b.GetAsync($"/v1/fine_tuning/jobs/{fineTuning!.JobId}")),
        ["GET /v1/fine_tuning/jobs/{id:guid}/events"] = async (_, b) => await Expect404(b.GetAsync($"/v1/fine_tuning/jobs/{fineTuning!.JobId}/events")),
        ["GET /v1/fine_tuning/jobs/{id:guid}/events/stream"] = async (_, b) => await Expect404(b.GetAsync($"/v1/fine_tuning/jobs/{fineTuning!.JobId}/events/stream")),
        ["POST /v1/fine_tuning/jobs/{id:guid}/cancel"] = async (_, b) => await Expect404(b.PostAsync($"/v1/fine_tuning/jobs/{fineTuning!.JobId}/cancel", null)),
        ["GET /v1/fine_tuning/jobs/{id:guid}/checkpoints"] = async (_, b) => await Expect404(b.GetAsync($"/v1/fine_tuning/jobs/{fineTuning!.JobId}/checkpoints")),
        ["GET /v1/fine_tuning/jobs/{id:guid}/metrics"] = async (_, b) =>
        {
            await Expect404(b.GetAsync($"/v1/fine_tuning/jobs/{fineTuning!.JobId}/metrics"));
            using var csv = new HttpRequestMessage(HttpMethod.Get, $"/v1/fine_tuning/jobs/{fineTuning!.JobId}/metrics");
            csv.Headers.Accept.ParseAdd("text/csv");
            await Expect404(b.SendAsync(csv));
        },
        ["GET /v1/fine_tuning/jobs/{id:guid}/loss_curve"] = async (_, b) => await Expect404(b.GetAsync($"/v1/fine_tuning/jobs/{fineTuning!.JobId}/loss_curve")),
        ["GET /v1/api-keys"] = async (a, b) =>
        {
            var keys = await b.GetStringAsync("/v1/api-keys");
            Assert.DoesNotContain(a.TenantId.ToString(), keys);
            Assert.DoesNotContain(a.Key[4..14], keys);
        },
        ["GET /v1/usage"] = async (_, b) =>
        {
            var usage = await b.GetFromJsonAsync<UsageResponse>("/v1/usage");
            Assert.Equal((0, 0, 0), (usage!.TotalRequests, usage.TotalActions, usage.TotalComputeMs));
        },
    };

    [Fact]
    public async Task Every_tenant_route_answers_tenant_b_about_tenant_a_resources_as_if_they_did_not_exist()
    {
        await using var app = new VlaCloudAppFactory(services);
        var a = await RegistryClient.CreateWorldAsync(app);
        using (var scope = app.Services.CreateScope())
            await scope.ServiceProvider.GetRequiredService<IUsageMeter>().RecordAsync(new UsageRecord(a.TenantId, a.V1.Id, 1, 16, 120), CancellationToken.None);
        fineTuning = await FineTuningResources.CreateAsync(app, a);
        var (_, keyB) = await app.CreateTenantAsync();
        var b = app.CreateClient(keyB);

        var routes = app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["*"]).Select(m => $"{m} {Normalize(e.RoutePattern.RawText)}"))
            .Where(route => !route.Contains("/hangfire", StringComparison.Ordinal))
            .Distinct()
            .ToList();
        var unprobed = routes.Where(r => !Probes.ContainsKey(r) && !Exempt.ContainsKey(r)).ToList();
        Assert.True(unprobed.Count == 0,
            "Routes without a tenant-isolation probe (add one to TenantIsolationTests.Probes, or to Exempt with a reason):\n  " +
            string.Join("\n  ", unprobed));

        foreach (var route in routes.Where(Probes.ContainsKey))
        {
            try
            {
                await Probes[route](a, b);
            }
            catch (Exception e) when (e is Xunit.Sdk.XunitException)
            {
                throw new Xunit.Sdk.XunitException($"{route}: {e.Message}");
            }
        }

        // Nothing B did touched A's resources.
        var alias = await a.Client.GetFromJsonAsync<AliasResponse>($"/v1/models/{a.Model}/aliases/production");
        Assert.Equal(a.V1.Id, alias!.CheckpointId);
        var usageA = await a.Client.GetFromJsonAsync<UsageResponse>("/v1/usage");
        Assert.Equal(120, usageA!.TotalComputeMs);
    }

    /// <summary>Tenant A's upload, dataset and job, made before the probes run.</summary>
    private static FineTuningResources? fineTuning;

    /// <summary>A pending upload, a queued import and a ready dataset with a queued job, rows of tenant A (no trainer runs in this test).</summary>
    private sealed record FineTuningResources(Guid UploadId, Guid DatasetId, Guid JobId, Guid ImportId)
    {
        public static async Task<FineTuningResources> CreateAsync(VlaCloudAppFactory app, TenantWorld a)
        {
            var created = await a.Client.PostAsJsonAsync("/v1/uploads", new CreateUploadRequest("x.tar", 10, new string('a', 64), "dataset", Embodiment: a.Embodiment.Name));
            var upload = (await created.Content.ReadFromJsonAsync<UploadResponse>())!;
            return await app.WithDbAsync(async db =>
            {
                var dataset = new Dataset { TenantId = a.TenantId, Name = "d.tar", EmbodimentId = a.Embodiment.Id, ArtifactSha256 = a.Artifact.Sha256, Status = DatasetStatus.Ready };
                var job = new FineTuningJob
                {
                    TenantId = a.TenantId, Model = a.Model, BaseCheckpointId = a.V1.Id, DatasetId = dataset.Id, EmbodimentId = a.Embodiment.Id,
                    Hyperparameters = "{}", TotalSteps = 1,
                };
                var import = new CheckpointImport { TenantId = a.TenantId, Model = a.Model, EmbodimentId = a.Embodiment.Id, ArtifactSha256 = a.Artifact.Sha256 };
                db.AddRange(dataset, job, import);
                await db.SaveChangesAsync();
                return new FineTuningResources(upload.Id, dataset.Id, job.Id, import.Id);
            });
        }
    }

    // A group route mapped at "" ends in a slash ("/v1/usage/"); requests match it either way.
    private static string Normalize(string? pattern) => pattern is { Length: > 1 } p ? p.TrimEnd('/') : pattern ?? "";

    private static async Task Expect404(Task<HttpResponseMessage> request)
    {
        var response = await request;
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"expected 404, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }
}
