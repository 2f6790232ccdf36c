using System.Net;
using System.Net.Http.Json;
using VlaCloud.Api.Apis;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Registry;

[Collection(RegistryCollection.Name)]
public sealed class AliasTests(ServicesFixture services)
{
    [Fact]
    public async Task Promotion_and_rollback_move_the_alias_and_every_move_is_in_its_history()
    {
        await using var app = new VlaCloudAppFactory(services);
        var a = await RegistryClient.CreateWorldAsync(app);
        var path = $"/v1/models/{a.Model}/aliases/production";

        var promoted = await a.Client.PutAsJsonAsync(path, new SetAliasRequest($"{a.Model}@v2", "better eval"));
        Assert.Equal(a.V2.Id, (await promoted.Content.ReadFromJsonAsync<AliasResponse>())!.CheckpointId);
        Assert.Equal(a.V2.Id, (await a.Client.GetFromJsonAsync<CheckpointResponse>($"/v1/checkpoints/resolve?ref={a.Model}@production"))!.Id);

        var rolledBack = await a.Client.PostAsJsonAsync($"{path}/rollback", new RollbackAliasRequest("regression on robot 3"));
        Assert.Equal(HttpStatusCode.OK, rolledBack.StatusCode);
        Assert.Equal(a.V1.Id, (await a.Client.GetFromJsonAsync<CheckpointResponse>($"/v1/checkpoints/resolve?ref={a.Model}@production"))!.Id);

        var history = await a.Client.GetFromJsonAsync<ListPage<AliasMoveResponse>>($"{path}/history");
        Assert.Equal(
            [(a.V2.Id, a.V1.Id, "regression on robot 3"), (a.V1.Id, a.V2.Id, "better eval"), ((Guid?)null, a.V1.Id, (string?)null)],
            history!.Data.Select(m => (m.FromCheckpointId, m.ToCheckpointId!.Value, m.Reason)));
        Assert.All(history.Data, m => Assert.NotNull(m.MovedByKeyId));
    }

    [Fact]
    public async Task An_alias_cannot_point_at_another_model_and_a_new_alias_cannot_roll_back()
    {
        await using var app = new VlaCloudAppFactory(services);
        var a = await RegistryClient.CreateWorldAsync(app);
        var other = await a.Client.RegisterAsync("other-model", a.Embodiment.Name, a.Artifact.Sha256);

        var wrongModel = await a.Client.PutAsJsonAsync($"/v1/models/{a.Model}/aliases/staging", new SetAliasRequest(other.Id.ToString()));
        Assert.Equal(HttpStatusCode.BadRequest, wrongModel.StatusCode);

        var rollback = await a.Client.PostAsJsonAsync($"/v1/models/{a.Model}/aliases/production/rollback", new RollbackAliasRequest());
        Assert.Equal(HttpStatusCode.Conflict, rollback.StatusCode);
        Assert.Equal("application/problem+json", rollback.Content.Headers.ContentType?.MediaType);

        var versionLike = await a.Client.PutAsJsonAsync($"/v1/models/{a.Model}/aliases/v3", new SetAliasRequest(a.V1.Id.ToString()));
        Assert.Equal(HttpStatusCode.BadRequest, versionLike.StatusCode);
    }

    [Fact]
    public async Task A_deleted_alias_no_longer_resolves_and_its_deletion_is_recorded()
    {
        await using var app = new VlaCloudAppFactory(services);
        var a = await RegistryClient.CreateWorldAsync(app);

        Assert.Equal(HttpStatusCode.NoContent, (await a.Client.DeleteAsync($"/v1/models/{a.Model}/aliases/production")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await a.Client.GetAsync($"/v1/checkpoints/resolve?ref={a.Model}@production")).StatusCode);
        var history = await a.Client.GetFromJsonAsync<ListPage<AliasMoveResponse>>($"/v1/models/{a.Model}/aliases/production/history");
        Assert.Null(history!.Data[0].ToCheckpointId);
        Assert.Equal(a.V1.Id, history.Data[0].FromCheckpointId);
    }
}
