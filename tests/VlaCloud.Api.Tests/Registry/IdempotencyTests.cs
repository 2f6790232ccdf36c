using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using VlaCloud.Api.Apis;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Registry;

[Collection(RegistryCollection.Name)]
public sealed class IdempotencyTests(ServicesFixture services)
{
    [Fact]
    public async Task A_retried_post_with_the_same_idempotency_key_replays_the_first_response_and_creates_once()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (tenant, key) = await app.CreateTenantAsync();
        var client = app.CreateClient(key);
        var body = new CreateEmbodimentRequest("franka", 7, 8, "joint_position", [new CameraDto("wrist", 224, 224)], 15, 10);

        var first = await Send(client, "retry-1", body);
        var second = await Send(client, "retry-1", body);

        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.Equal(HttpStatusCode.Created, second.StatusCode);
        Assert.Equal(await first.Content.ReadAsStringAsync(), await second.Content.ReadAsStringAsync());
        Assert.True(second.Headers.Contains("Idempotent-Replayed"));
        Assert.Equal(1, await app.WithDbAsync(db => db.Embodiments.IgnoreQueryFilters().CountAsync(e => e.TenantId == tenant.Id)));
    }

    [Fact]
    public async Task The_same_idempotency_key_with_another_body_is_a_422_and_an_overlong_key_a_400()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (_, key) = await app.CreateTenantAsync();
        var client = app.CreateClient(key);
        var body = new CreateEmbodimentRequest("widowx", 7, 0, "delta_eef+gripper", [new CameraDto("primary", 224, 224)], 5, 16);

        Assert.Equal(HttpStatusCode.Created, (await Send(client, "k-2", body)).StatusCode);
        var reused = await Send(client, "k-2", body with { Name = "other" });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, reused.StatusCode);
        Assert.Equal("application/problem+json", reused.Content.Headers.ContentType?.MediaType);

        var overlong = await Send(client, new string('k', 256), body with { Name = "third" });
        Assert.Equal(HttpStatusCode.BadRequest, overlong.StatusCode);
    }

    [Fact]
    public async Task The_same_idempotency_key_in_another_tenant_is_independent()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (_, keyA) = await app.CreateTenantAsync();
        var (_, keyB) = await app.CreateTenantAsync();
        var body = new CreateEmbodimentRequest("so100", 6, 6, "joint_position", [new CameraDto("top", 640, 480)], 30, 50);

        var a = await Send(app.CreateClient(keyA), "shared", body);
        var b = await Send(app.CreateClient(keyB), "shared", body);
        Assert.Equal(HttpStatusCode.Created, b.StatusCode);
        Assert.False(b.Headers.Contains("Idempotent-Replayed"));
        Assert.NotEqual((await a.Content.ReadFromJsonAsync<EmbodimentResponse>())!.Id, (await b.Content.ReadFromJsonAsync<EmbodimentResponse>())!.Id);
    }

    private static Task<HttpResponseMessage> Send(HttpClient client, string idempotencyKey, CreateEmbodimentRequest body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/embodiments") { Content = JsonContent.Create(body) };
        request.Headers.Add("Idempotency-Key", idempotencyKey);
        return client.SendAsync(request);
    }
}
