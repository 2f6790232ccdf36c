using Microsoft.EntityFrameworkCore;
using Npgsql;
using VlaCloud.Testing;

namespace VlaCloud.Registry.Tests;

[Collection(RegistryDatabaseCollection.Name)]
public sealed class CheckpointRegistryTests(ServicesFixture services)
{
    [Fact]
    public async Task Checkpoints_cannot_be_changed_through_the_context_nor_with_sql()
    {
        var registry = await RegistryDatabase.CreateAsync(services);
        var (tenant, embodiment, artifact) = await registry.TenantWithArtifactAsync();
        var checkpoint = await registry.RegisterAsync(tenant, embodiment, artifact, "frozen");

        await using var db = registry.Context(tenant);
        var row = await db.Checkpoints.SingleAsync(c => c.Id == checkpoint.Id);
        row.Sha256 = new string('0', 64);
        await Assert.ThrowsAsync<InvalidOperationException>(() => db.SaveChangesAsync());
        await using var raw = registry.Context(tenant);
        var sql = await Assert.ThrowsAsync<PostgresException>(() =>
            raw.Database.ExecuteSqlAsync($"UPDATE checkpoints SET version = 99 WHERE id = {checkpoint.Id}"));
        Assert.Contains("immutable", sql.MessageText);
    }

    [Fact]
    public async Task Each_new_version_and_each_alias_move_announce_that_references_may_resolve_differently_and_a_refusal_announces_nothing()
    {
        var registry = await RegistryDatabase.CreateAsync(services);
        var (tenant, embodiment, artifact) = await registry.TenantWithArtifactAsync();
        var announced = registry.Announcements;

        var v1 = await registry.RegisterAsync(tenant, embodiment, artifact, "policy");
        Assert.Equal(1, announced.Count);
        await registry.RegisterAsync(tenant, embodiment, artifact, "policy");
        Assert.Equal(2, announced.Count);

        await using (var db = registry.Context(tenant))
        {
            var refused = await Assert.ThrowsAsync<RegistryException>(() =>
                registry.Checkpoints(db).RegisterAsync(new("no-such-arm", "policy", artifact.Sha256, "{}", "{}"), CancellationToken.None));
            Assert.Contains("no-such-arm", refused.Message);
        }
        Assert.Equal(2, announced.Count);

        await using (var db = registry.Context(tenant))
        {
            var aliases = registry.Aliases(db);
            await aliases.SetAsync("policy", "production", "policy@v1", "first", null, CancellationToken.None);
            Assert.Equal(3, announced.Count);
            // Pointing it where it already points changes nothing, so nobody has to forget anything.
            await aliases.SetAsync("policy", "production", "policy@v1", "again", null, CancellationToken.None);
            Assert.Equal(3, announced.Count);
            await aliases.SetAsync("policy", "production", "policy@v2", "better", null, CancellationToken.None);
            Assert.Equal(4, announced.Count);
            var back = await aliases.RollbackAsync("policy", "production", "regression", null, CancellationToken.None);
            Assert.Equal(v1.Id, back.CheckpointId);
            Assert.Equal(5, announced.Count);
            await aliases.DeleteAsync("policy", "production", "retired", null, CancellationToken.None);
            Assert.Equal(6, announced.Count);
        }
    }
}
