using Microsoft.EntityFrameworkCore;
using VlaCloud.Policy;
using VlaCloud.Registry;
using VlaCloud.Registry.Artifacts;
using VlaCloud.Registry.Checkpoints;
using VlaCloud.Registry.Entities;
using VlaCloud.Sim;
using VlaCloud.Training;

namespace VlaCloud.Api.Hosting;

/// <summary>
/// Registers the demo: the simulator's embodiment and a tiny ST4VLA checkpoint trained on the simulator, both
/// public, with the alias <c>sim-demo@production</c>, so a new user's first <c>act</c> call gets meaningful actions.
/// The weights ship with the simulator (a few MB), so starting never trains anything. Idempotent; when a new build
/// bundles other weights, the next start registers them as the next version and moves the alias to it, so an existing
/// install serves the new demo and can still roll back to the old one.
/// </summary>
internal sealed class DemoSeeder(RegistryDbContext db, IArtifactStore artifacts, CheckpointRegistry registry, AliasService aliases, ILogger<DemoSeeder> logger)
{
    /// <summary>Model name of the demo checkpoint.</summary>
    public const string Model = "sim-demo";

    /// <summary>The alias the demo is served under.</summary>
    public const string Alias = "production";

    public async Task SeedAsync(CancellationToken cancellationToken)
    {
        var embodiment = await EnsureEmbodimentAsync(cancellationToken);
        await using var bundled = DemoCheckpoint.Open();
        if (bundled is null)
        {
            logger.LogWarning("No demo checkpoint is bundled with this build; skipping {Model}", Model);
            return;
        }
        using var tar = new MemoryStream();
        await bundled.CopyToAsync(tar, cancellationToken);
        tar.Position = 0;
        var sha256 = await Sha256Hex.OfAsync(tar, cancellationToken);
        if (await db.Checkpoints.AnyAsync(c => c.TenantId == null && c.ModelName == Model && c.EmbodimentId == embodiment.Id && c.Sha256 == sha256, cancellationToken)) return;

        var folder = Directory.CreateTempSubdirectory("vlacloud-demo-").FullName;
        try
        {
            tar.Position = 0;
            PolicyCheckpoint.Unpack(tar, folder);
            tar.Position = 0;
            var stored = await artifacts.PutAsync(tar, cancellationToken);
            await db.RecordArtifactAsync(null, stored, "checkpoint", DateTimeOffset.UtcNow, cancellationToken);
            // The registry services load their own copies of the embodiment and checkpoint; entities this seeder
            // tracked would collide with them in the shared context.
            db.ChangeTracker.Clear();
            var checkpoint = await registry.RegisterAsync(new CheckpointRegistration(
                embodiment.Name, Model, stored.Sha256,
                await File.ReadAllTextAsync(Path.Combine(folder, PolicyCheckpoint.ConfigFile), cancellationToken),
                await File.ReadAllTextAsync(Path.Combine(folder, PolicyCheckpoint.NormalizationFile), cancellationToken),
                DemoCheckpoint.MetricsJson), cancellationToken);
            db.ChangeTracker.Clear();
            await aliases.SetAsync(Model, Alias, checkpoint.Id.ToString(), "demo checkpoint bundled with VlaCloud", null, cancellationToken);
            logger.LogInformation("Registered the public demo checkpoint {Model}@v{Version} for {Embodiment} as {Model}@{Alias}",
                Model, checkpoint.Version, embodiment.Name, Model, Alias);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private async Task<Embodiment> EnsureEmbodimentAsync(CancellationToken cancellationToken)
    {
        var sim = SimEmbodiment.Tabletop;
        if (await db.Embodiments.FirstOrDefaultAsync(e => e.TenantId == null && e.Name == sim.Name, cancellationToken) is { } existing) return existing;
        var embodiment = new Embodiment
        {
            Name = sim.Name,
            Description = "The built-in 2D tabletop simulator's robot: a top-down gripper that picks, places and pushes objects.",
            ActionDim = sim.ActionDim,
            StateDim = sim.StateDim,
            ActionSpace = sim.ActionSemantics.Length <= 100 ? sim.ActionSemantics : "delta_xy+gripper",
            ActionNames = [.. sim.ActionNames],
            StateNames = [.. sim.StateNames],
            Cameras = sim.Cameras.Select(c => new EmbodimentCamera { Name = c.Name, Width = c.Width, Height = c.Height }).ToList(),
            ControlHz = sim.ControlHz,
            ChunkLength = sim.ChunkLength,
            Simulator = SimEnvironments.Tabletop,
            BinaryActionDims = [.. SimTrainingSets.DataOptions.BinaryActionDims ?? []],
        };
        db.Embodiments.Add(embodiment);
        await db.SaveChangesAsync(cancellationToken);
        return embodiment;
    }
}
