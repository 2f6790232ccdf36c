using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql;
using VlaCloud.Registry.Checkpoints;
using VlaCloud.Testing;

namespace VlaCloud.Registry.Tests;

[Collection(RegistryDatabaseCollection.Name)]
public sealed class MigrationTests(ServicesFixture services)
{
    [Fact]
    public async Task Migrations_apply_to_an_empty_database_match_the_model_and_are_idempotent()
    {
        var connectionString = await services.CreateDatabaseAsync();
        var options = new DbContextOptionsBuilder<RegistryDbContext>();
        RegistryServiceCollectionExtensions.ConfigureNpgsql(options, connectionString);
        await using var db = new RegistryDbContext(options.Options);

        Assert.NotEmpty(await db.Database.GetPendingMigrationsAsync());
        await db.Database.MigrateAsync();
        Assert.Empty(await db.Database.GetPendingMigrationsAsync());
        Assert.False(db.Model.GetRelationalModel() is null);
        Assert.False(db.Database.HasPendingModelChanges(), "The model has changes no migration covers: add a migration.");

        await db.Database.MigrateAsync();
        Assert.Equal(db.Database.GetMigrations(), await db.Database.GetAppliedMigrationsAsync());

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public'", connection);
        var tables = ((string)(await command.ExecuteScalarAsync())!).Split(',');
        Assert.Superset(new HashSet<string>(["tenants", "api_keys", "embodiments", "checkpoints", "aliases", "alias_moves", "artifacts", "model_version_counters", "usage_days"]),
            tables.ToHashSet());
    }

    [Fact]
    public async Task Migrating_a_fresh_database_logs_no_failed_command()
    {
        // EF's migrator used to read the history table before creating it: one failed SELECT, logged at error level, on every fresh install.
        var connectionString = await services.CreateDatabaseAsync();
        var failed = new List<string>();
        var options = new DbContextOptionsBuilder<RegistryDbContext>();
        RegistryServiceCollectionExtensions.ConfigureNpgsql(options, connectionString)
            .LogTo(message => { lock (failed) failed.Add(message); }, [RelationalEventId.CommandError, RelationalEventId.ConnectionError]);
        await using var db = new RegistryDbContext(options.Options);

        await RegistryMigrations.MigrateAsync(db);

        Assert.Empty(failed);
        Assert.Empty(await db.Database.GetPendingMigrationsAsync());
        await RegistryMigrations.MigrateAsync(db); // and again, on a migrated database
        Assert.Empty(failed);
    }

    [Fact]
    public async Task Private_embodiments_that_shadow_a_public_name_are_renamed_by_their_migration_and_keep_their_checkpoints()
    {
        var connectionString = await services.CreateDatabaseAsync();
        var options = new DbContextOptionsBuilder<RegistryDbContext>();
        RegistryServiceCollectionExtensions.ConfigureNpgsql(options, connectionString);
        await using (var db = new RegistryDbContext(options.Options))
        {
            var migrations = db.Database.GetMigrations().ToList();
            var rename = migrations.FindIndex(m => m.EndsWith("_PrivateEmbodimentsNoLongerShadowPublicNames", StringComparison.Ordinal));
            Assert.True(rename > 0, "the renaming migration is missing");
            await db.GetService<IMigrator>().MigrateAsync(migrations[rename - 1]);
        }

        // What a database held before the rule, written as the schema of the migration before it.
        var (a, b) = (Guid.NewGuid(), Guid.NewGuid());
        var publicName = $"pub-{Guid.NewGuid():N}"[..16];
        var longName = new string('l', 100);
        var (publicId, longPublicId, shadowA, takenA, ownA, shadowB, longB, checkpoint) =
            (Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var insert = new NpgsqlCommand("""
                INSERT INTO tenants (id, name, created_at) VALUES (@a, @an, now()), (@b, @bn, now());
                INSERT INTO embodiments (id, tenant_id, name, action_dim, state_dim, action_space, action_names, state_names, control_hz, chunk_length, created_at)
                VALUES (@public_id, NULL, @public, 3, 3, 'delta_eef+gripper', '{}', '{}', 10, 8, now()),
                       (@long_public_id, NULL, @long, 3, 3, 'delta_eef+gripper', '{}', '{}', 10, 8, now()),
                       (@shadow_a, @a, @public, 7, 0, 'joint', '{}', '{}', 10, 16, now()),
                       (@taken_a, @a, @public || '-private', 7, 0, 'joint', '{}', '{}', 10, 16, now()),
                       (@own_a, @a, 'own-arm', 7, 0, 'joint', '{}', '{}', 10, 16, now()),
                       (@shadow_b, @b, @public, 3, 3, 'delta_eef+gripper', '{}', '{}', 10, 8, now()),
                       (@long_b, @b, @long, 3, 3, 'delta_eef+gripper', '{}', '{}', 10, 8, now());
                INSERT INTO checkpoints (id, tenant_id, embodiment_id, model_name, version, artifact_uri, sha256, size_bytes, config, normalization_stats, created_at)
                VALUES (@checkpoint, @a, @shadow_a, 'my-policy', 1, 'file:///x', repeat('a', 64), 10, '{}', '{}', now());
                """, connection);
            foreach (var (name, value) in new (string, object)[]
                     {
                         ("a", a), ("b", b), ("an", $"t-{a:N}"[..20]), ("bn", $"t-{b:N}"[..20]), ("public", publicName), ("long", longName),
                         ("public_id", publicId), ("long_public_id", longPublicId), ("shadow_a", shadowA), ("taken_a", takenA), ("own_a", ownA),
                         ("shadow_b", shadowB), ("long_b", longB), ("checkpoint", checkpoint),
                     })
                insert.Parameters.AddWithValue(name, value);
            await insert.ExecuteNonQueryAsync();
        }

        await using (var db = new RegistryDbContext(options.Options))
        {
            await db.Database.MigrateAsync();
            Assert.Empty(await db.Database.GetPendingMigrationsAsync());
        }

        Dictionary<Guid, string> names;
        await using (var db = new RegistryDbContext(options.Options))
            names = await db.Embodiments.IgnoreQueryFilters().ToDictionaryAsync(e => e.Id, e => e.Name);
        Assert.Equal(publicName, names[publicId]);
        Assert.Equal(longName, names[longPublicId]);
        Assert.Equal($"{publicName}-private-2", names[shadowA]); // -private was already the tenant's
        Assert.Equal($"{publicName}-private", names[takenA]);
        Assert.Equal("own-arm", names[ownA]);
        Assert.Equal($"{publicName}-private", names[shadowB]); // per tenant: b had no -private
        Assert.Equal($"{longName[..92]}-private", names[longB]);

        // The checkpoint stays on its embodiment (same id) and resolves by the new name, and the name alone means the public embodiment now.
        await using var tenantA = new RegistryDbContext(options.Options, new FixedTenantAccessor(a));
        var registry = new CheckpointRegistry(tenantA, TimeProvider.System, new ResolutionChangeLog());
        var resolved = await registry.ResolveAsync("my-policy@v1", $"{publicName}-private-2", CancellationToken.None);
        Assert.Equal(checkpoint, resolved.Id);
        Assert.Equal(shadowA, resolved.EmbodimentId);
        Assert.Equal(publicId, (await registry.FindEmbodimentAsync(publicName, CancellationToken.None))!.Id);
        Assert.Single(await tenantA.Embodiments.Where(e => e.Name == publicName).ToListAsync());
    }

    [Fact]
    public async Task The_capabilities_migration_marks_only_the_embodiments_the_old_guess_took_for_the_simulator_and_gives_every_tenant_weight_1()
    {
        var connectionString = await services.CreateDatabaseAsync();
        var options = new DbContextOptionsBuilder<RegistryDbContext>();
        RegistryServiceCollectionExtensions.ConfigureNpgsql(options, connectionString);
        await using (var db = new RegistryDbContext(options.Options))
        {
            var migrations = db.Database.GetMigrations().ToList();
            var capabilities = migrations.FindIndex(m => m.EndsWith("_EmbodimentSimulatorAndTenantWeight", StringComparison.Ordinal));
            Assert.True(capabilities > 0, "the capabilities migration is missing");
            await db.GetService<IMigrator>().MigrateAsync(migrations[capabilities - 1]);
        }

        // Rows as the schema before the migration held them; cameras as EF wrote them (read back through the model below).
        var tenant = Guid.NewGuid();
        var (sim, smallSim, arm, plain) = (Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var insert = new NpgsqlCommand("""
                INSERT INTO tenants (id, name, created_at) VALUES (@t, @tn, now());
                INSERT INTO embodiments (id, tenant_id, name, action_dim, state_dim, action_space, action_names, state_names, cameras, control_hz, chunk_length, created_at)
                VALUES (@sim, NULL, 'sim-tabletop', 3, 3, 'delta_xy+gripper', '{dx,dy,gripper}', '{x,y,gripper}',
                        '[{"Name": "main", "Width": 64, "Height": 64}, {"Name": "wrist", "Width": 64, "Height": 64}]', 10, 8, now()),
                       (@small_sim, @t, 'sim-tabletop', 3, 3, 'delta_xy+gripper', '{dx,dy,gripper}', '{x,y,gripper}',
                        '[{"Name": "main", "Width": 32, "Height": 32}, {"Name": "wrist", "Width": 32, "Height": 32}]', 10, 8, now()),
                       (@arm, @t, 'widowx', 7, 0, 'delta_eef+gripper', '{x,y,z,roll,pitch,yaw,Gripper_Open}', '{}',
                        '[{"Name": "main", "Width": 64, "Height": 64}, {"Name": "wrist", "Width": 64, "Height": 64}]', 5, 16, now()),
                       (@plain, @t, 'so100', 6, 6, 'joint_position', '{}', '{}', '[{"Name": "top", "Width": 640, "Height": 480}]', 30, 50, now());
                """, connection);
            foreach (var (name, value) in new (string, object)[] { ("t", tenant), ("tn", $"t-{tenant:N}"[..20]), ("sim", sim), ("small_sim", smallSim), ("arm", arm), ("plain", plain) })
                insert.Parameters.AddWithValue(name, value);
            await insert.ExecuteNonQueryAsync();
        }

        await using (var db = new RegistryDbContext(options.Options))
        {
            await db.Database.MigrateAsync();
            Assert.Empty(await db.Database.GetPendingMigrationsAsync());
        }

        await using var after = new RegistryDbContext(options.Options);
        var rows = await after.Embodiments.IgnoreQueryFilters().AsNoTracking().ToDictionaryAsync(e => e.Id);
        Assert.Equal(["main", "wrist"], rows[sim].Cameras.Select(c => c.Name)); // the model reads the camera JSON the SQL matched
        Assert.Equal("sim-tabletop", rows[sim].Simulator);
        Assert.Equal([2], rows[sim].BinaryActionDims);
        Assert.Null(rows[smallSim].Simulator); // its cameras are not the simulator's
        Assert.Equal([2], rows[smallSim].BinaryActionDims);
        Assert.Null(rows[arm].Simulator);
        Assert.Equal([6], rows[arm].BinaryActionDims);
        Assert.Null(rows[plain].Simulator);
        Assert.Empty(rows[plain].BinaryActionDims);
        Assert.Equal(1, (await after.Tenants.SingleAsync(t => t.Id == tenant)).InferenceWeight);

        // The bounds hold in the database too, whatever path writes the row.
        await using var tooHeavy = new NpgsqlConnection(connectionString);
        await tooHeavy.OpenAsync();
        await using var update = new NpgsqlCommand("UPDATE tenants SET inference_weight = 1000 WHERE id = @t", tooHeavy);
        update.Parameters.AddWithValue("t", tenant);
        var refused = await Assert.ThrowsAsync<PostgresException>(() => update.ExecuteNonQueryAsync());
        Assert.Equal(PostgresErrorCodes.CheckViolation, refused.SqlState);
    }
}
