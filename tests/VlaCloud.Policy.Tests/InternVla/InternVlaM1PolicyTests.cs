using TorchSharp;
using VlaCloud.Parity;
using VlaCloud.Policy.Checkpoint;
using static TorchSharp.torch;
using VlaCloud.Testing;
using VlaCloud.Actions;

namespace VlaCloud.Policy.Tests.InternVla;

/// <summary>The <c>internvla-m1</c> family behind <see cref="VlaPolicy"/>'s verbs, saving and loading.</summary>
public sealed class InternVlaM1PolicyTests
{
    private const string Embodiment = "arm6";
    private const int ActionDim = 6;

    private static NormalizationStats Stats() => TestPolicies.IdentityStats(ActionDim, 3);

    private static VlaPolicy Create(PolicyConfig? config = null, long seed = 3)
    {
        var policy = VlaPolicy.Create(config ?? TinyInternVlaM1.PolicyConfig(), new Dictionary<string, NormalizationStats> { [Embodiment] = Stats() }, seed,
            tokenizerJson: TinyInternVlaM1.TokenizerJson());
        // Upstream zero-initialises the DiT's output layer; a trained one is not (see InternVlaM1Tests).
        using (no_grad())
            foreach (var (_, p) in policy.NamedParameters().Where(p => p.Name.Contains("final_layer", StringComparison.Ordinal)))
                p.normal_(0, 0.2);
        return policy;
    }

    private static CameraImage Image(int seed, int side = 64)
    {
        var pixels = new byte[side * side * 3];
        for (var i = 0; i < pixels.Length; i++) pixels[i] = (byte)((i * (seed + 3) + seed * 17) % 251);
        return new CameraImage(pixels, side, side);
    }

    private static Observation Observation(int seed, int cameras = 1) =>
        new([.. Enumerable.Range(0, cameras).Select(c => Image(seed + 10 * c))], seed % 2 == 0 ? "pick the red cube" : "Open The Drawer", null, Embodiment);

    [Fact]
    public void The_config_round_trips_with_its_family_and_upstream_sections_and_counts_the_built_parameters()
    {
        var config = TinyInternVlaM1.PolicyConfig();
        var read = PolicyConfig.FromJson(config.ToJson());
        Assert.Equal(PolicyConfig.InternVlaM1Family, read.Family);
        Assert.Equal(config.ToJson(), read.ToJson());
        read.Validate();
        Assert.Equal(TinyInternVlaM1.ChunkLength, read.ChunkLength);
        using var policy = Create(read);
        Assert.Equal(policy.ParameterCount, read.EstimateParameters().Total);
        // A config without the field is the old family, as every checkpoint saved before the field existed.
        Assert.Equal(PolicyConfig.St4VlaFamily, PolicyConfig.FromJson("{}").Family);
    }

    [Fact]
    public void Actions_are_chunks_of_the_release_length_in_the_embodiments_dimension_and_follow_the_seed()
    {
        using var policy = Create();
        var observations = new[] { Observation(0), Observation(1, cameras: 2), Observation(2) };
        var a = policy.SampleActions(observations, [1, 2, 3]);
        Assert.All(a, chunk => Assert.Equal((TinyInternVlaM1.ChunkLength, ActionDim), (chunk.Horizon, chunk.ActionDim)));
        Assert.All(a, chunk => Assert.All(chunk.Values.ToArray(), v => Assert.True(float.IsFinite(v) && v >= -1.0001f && v <= 1.0001f)));
        // A sample's result does not depend on its batch, and its noise comes from its seed.
        var alone = policy.SampleActions([observations[2]], [3])[0];
        Assert.True(MaxDiff(alone, a[2]) < 1e-4);
        Assert.True(MaxDiff(policy.SampleActions([observations[2]], [4])[0], a[2]) > 1e-4);
        // DDIM steps and the guidance scale are options of the call.
        Assert.True(MaxDiff(policy.SampleActions([observations[2]], [3], steps: 4)[0], a[2]) > 1e-6);
        Assert.True(MaxDiff(policy.SampleActions([observations[2]], [3], cfgScale: 1.0)[0], a[2]) > 1e-6);
    }

    [Fact]
    public void A_saved_checkpoint_holds_the_upstream_names_and_loads_to_the_same_actions()
    {
        using var policy = Create();
        var dir = Directory.CreateTempSubdirectory("vlacloud-m1-").FullName;
        try
        {
            policy.Save(dir);
            using (var file = File.OpenRead(Path.Combine(dir, PolicyCheckpoint.WeightsFile)))
            {
                var names = Safetensors.ReadHeader(file, PolicyCheckpoint.WeightsFile).Entries.Keys.ToList();
                Assert.Equal(policy.NamedParameters().Select(p => p.Name).Order(), names.Order());
                string[] prefixes = ["qwen_vl_interface.model.", "layer_qformer.", "action_model.net.", "dino_encoder.body.", "dino_pro."];
                Assert.All(names, n => Assert.Contains(prefixes, p => n.StartsWith(p, StringComparison.Ordinal)));
                Assert.All(prefixes, p => Assert.Contains(names, n => n.StartsWith(p, StringComparison.Ordinal)));
            }
            // In bf16 the DiT runs in bf16 while the DDIM state stays float32 (as upstream's float32 autocast).
            using (var bf16 = VlaPolicy.Load(dir, dtype: "bf16"))
            {
                var chunk = bf16.SampleActions([Observation(4)], [9])[0];
                Assert.Equal((TinyInternVlaM1.ChunkLength, ActionDim), (chunk.Horizon, chunk.ActionDim));
                Assert.All(chunk.Values.ToArray(), v => Assert.True(float.IsFinite(v)));
            }
            using var loaded = VlaPolicy.Load(dir);
            Assert.Equal(PolicyConfig.InternVlaM1Family, loaded.Config.Family);
            var observation = Observation(4, cameras: 2);
            Assert.True(MaxDiff(policy.SampleActions([observation], [9])[0], loaded.SampleActions([observation], [9])[0]) < 1e-5);
            // The weight budget covers the family: parameters × bytes, refused before anything is built.
            var json = File.ReadAllText(Path.Combine(dir, PolicyCheckpoint.ConfigFile));
            var error = Assert.Throws<CheckpointException>(() => PolicyCheckpoint.ReadConfig(json, "fp32", policy.ParameterCount * 4 - 1));
            Assert.Contains("parameters", error.Message);
            PolicyCheckpoint.ReadConfig(json, "bf16", policy.ParameterCount * 2);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void A_config_whose_sections_do_not_fit_is_refused_naming_the_field()
    {
        var config = TinyInternVlaM1.PolicyConfig();
        Assert.Contains("chunk_length", Assert.Throws<ArgumentException>(() => (config with { ChunkLength = 8 }).Validate()).Message);
        Assert.Contains("framework", Assert.Throws<ArgumentException>(() => (config with { Framework = null }).Validate()).Message);
        var wide = (System.Text.Json.Nodes.JsonObject)config.Framework!.DeepClone();
        wide["layer_qformer"]!["input_dim"] = 999;
        Assert.Contains("input_dim", Assert.Throws<ArgumentException>(() => (config with { Framework = wide }).Validate()).Message);
        Assert.Contains("family", Assert.Throws<ArgumentException>(() => (config with { Family = "other" }).Validate()).Message);
    }

    [Fact]
    public void Co_training_losses_reach_every_group_and_the_groups_split_the_parameters()
    {
        using var policy = Create();
        var groups = policy.ParameterGroups();
        var all = policy.Parameters().ToList();
        Assert.Equal(all.Count, groups.Vlm.Count + groups.ActionExpert.Count + groups.Rest.Count);
        Assert.Equal(all.Count, groups.Vlm.Concat(groups.ActionExpert).Concat(groups.Rest).Distinct().Count());

        var actions = ActionChunk.Create(TinyInternVlaM1.ChunkLength, ActionDim, 0, static (values, _) =>
        {
            for (var i = 0; i < values.Length; i++) values[i] = MathF.Sin(i / ActionDim + i % ActionDim);
        });
        var valid = Enumerable.Range(0, TinyInternVlaM1.ChunkLength).Select(t => t < 12).ToArray();
        var batch = new TrainingBatch(
            [new ActionSample(Observation(0), actions), new ActionSample(Observation(1, cameras: 2), actions, valid)],
            [new SpatialSample([Image(5)], SpatialPrompts.Question(SpatialKind.Box, "pick the cube"), SpatialKind.Box, [3, 4, 30, 40]),
             new SpatialSample([Image(6)], SpatialPrompts.Question(SpatialKind.Point, "pick the cube"), SpatialKind.Point, [10, 12])]);
        using var scope = NewDisposeScope();
        var loss = policy.ComputeLoss(batch);
        Assert.NotNull(loss.Action);
        Assert.NotNull(loss.Spatial);
        Assert.Equal(loss.Action!.item<float>() + 0.1f * loss.Spatial!.item<float>(), loss.Total.item<float>(), 4);
        loss.Total.backward();
        foreach (var (name, group) in new[] { ("vlm", groups.Vlm), ("action expert", groups.ActionExpert), ("rest", groups.Rest) })
            Assert.True(group.Any(p => p.grad is { } g && g.abs().sum().item<float>() > 0), $"no gradient reaches the {name} group");

        // Vanilla drops the VLM loss.
        using var vanilla = Create(TinyInternVlaM1.PolicyConfig() with { Vanilla = true });
        var plain = vanilla.ComputeLoss(batch);
        Assert.Null(plain.Spatial);
    }

    [Fact]
    public void A_session_hit_skips_the_condition_and_gives_exactly_the_actions_of_the_miss()
    {
        using var policy = Create();
        Observation[] batch = [Observation(0), Observation(1, cameras: 2), Observation(2)];
        var miss = policy.SampleActions(batch, [1, 2, 3], sessions: ["a", "b", null]);
        Assert.Equal(0, policy.PrefixHits);
        var hit = policy.SampleActions(batch, [1, 2, 3], sessions: ["a", "b", null]);
        Assert.Equal(2, policy.PrefixHits);
        for (var i = 0; i < batch.Length; i++) Assert.Equal(miss[i], hit[i]);
        // A changed instruction misses.
        policy.SampleActions([batch[0] with { Instruction = batch[0].Instruction + " now" }], [1], sessions: ["a"]);
        Assert.Equal(2, policy.PrefixHits);
    }

    [Fact]
    public void A_batch_sampled_a_ddim_step_at_a_time_with_another_batchs_steps_in_between_gives_exactly_the_actions_of_running_it_alone()
    {
        using var policy = Create();
        // The long batch has two camera counts (two chains) and guidance; the short one runs without guidance and fewer steps.
        Observation[] longBatch = [Observation(0), Observation(1, cameras: 2)];
        Observation[] shortBatch = [Observation(2)];
        var longAlone = policy.SampleActions(longBatch, [1, 2]);
        var shortAlone = policy.SampleActions(shortBatch, [3], steps: 4, cfgScale: 1.0);

        using var longSampling = policy.StartSampling(longBatch, [1, 2]);
        longSampling.Step();
        using var shortSampling = policy.StartSampling(shortBatch, [3], steps: 4, cfgScale: 1.0);
        Assert.Throws<InvalidOperationException>(() => shortSampling.Finish());
        while (!shortSampling.Done)
        {
            shortSampling.Step();
            if (!longSampling.Done) longSampling.Step();
        }
        while (!longSampling.Done) longSampling.Step();

        Assert.Equal(shortAlone[0].Values.ToArray(), shortSampling.Finish()[0].Values.ToArray());
        var longSliced = longSampling.Finish();
        for (var i = 0; i < 2; i++) Assert.Equal(longAlone[i].Values.ToArray(), longSliced[i].Values.ToArray());
    }

    [Fact]
    public void Point_guidance_is_accepted_round_trips_and_counts_its_parameters_and_is_refused_with_vanilla()
    {
        var config = TinyInternVlaM1.PolicyConfig() with { PointGuidance = true };
        config.Validate();
        var read = PolicyConfig.FromJson(config.ToJson());
        Assert.True(read.PointGuidance);
        Assert.Equal(config.ToJson(), read.ToJson());
        Assert.True(read.ToInternVlaM1().PointGuidance);
        // The switch is VlaCloud's: the upstream framework section is the same as without it.
        Assert.Equal(TinyInternVlaM1.PolicyConfig().Framework!.ToJsonString(), read.Framework!.ToJsonString());
        using (var policy = Create(read)) Assert.Equal(policy.ParameterCount, read.EstimateParameters().Total);
        Assert.Contains("vanilla", Assert.Throws<ArgumentException>(() => (config with { Vanilla = true }).Validate()).Message);
    }

    [Fact]
    public void A_point_guided_checkpoint_adds_only_unreleased_names_and_loads_to_the_same_actions()
    {
        using var policy = Create(TinyInternVlaM1.PolicyConfig() with { PointGuidance = true });
        using var plain = Create();
        var shapes = plain.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.shape);
        var added = policy.NamedParameters().Select(p => p.Name).Except(shapes.Keys).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["action_model.net.point_position", "action_model.net.z_embedder.point_uncondition", "point_projector.bias", "point_projector.weight"], added);
        // Every name the unguided model has keeps its shape, and no added name is one of the released checkpoint's.
        Assert.All(policy.NamedParameters().Where(p => shapes.ContainsKey(p.Name)), p => Assert.Equal(shapes[p.Name], p.Parameter.shape));
        var released = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(TinyInternVlaM1.FixtureFolder, "keys.json")))!["internvla_m1_state_dict"]!.AsObject();
        Assert.NotEmpty(released);
        Assert.All(added, name => Assert.False(released.ContainsKey(name), name));
        // Guidance and dropout replace the point token too: the DiT's null condition has a row for it.
        var q = TinyInternVlaM1.PolicyConfig().LatentQueries;
        Assert.Equal(q + 1, policy.InternVlaM1.M1.Heads.ActionModel.Net.Uncondition.shape[0]);

        var dir = Directory.CreateTempSubdirectory("vlacloud-m1-point-").FullName;
        try
        {
            policy.Save(dir);
            using var loaded = VlaPolicy.Load(dir);
            Assert.True(loaded.Config.PointGuidance);
            var observation = Observation(4, cameras: 2);
            PointGuide[] guide = [new([12, 20], [40, 33])];
            Assert.True(MaxDiff(policy.SampleActions([observation], [9], guides: guide)[0], loaded.SampleActions([observation], [9], guides: guide)[0]) < 1e-5);
            // Without guides both ask their own System 2, which is the same weights.
            Assert.True(MaxDiff(policy.SampleActions([observation], [9])[0], loaded.SampleActions([observation], [9])[0]) < 1e-5);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void The_guides_change_the_actions_and_without_them_system_2s_own_answers_are_the_guides()
    {
        using var policy = Create(TinyInternVlaM1.PolicyConfig() with { PointGuidance = true });
        using (no_grad())
            foreach (var (_, p) in policy.NamedParameters().Where(p => p.Name.StartsWith("point_projector.", StringComparison.Ordinal)))
                p.normal_(0, 1);
        policy.WeightsChanged();
        Observation[] batch = [Observation(0), Observation(1, cameras: 2)];
        var near = policy.SampleActions(batch, [1, 2], guides: [new PointGuide([10, 12], [50, 40]), new PointGuide([10, 12], [50, 40])]);
        var far = policy.SampleActions(batch, [1, 2], guides: [new PointGuide([60, 3], null), new PointGuide(null, null)]);
        for (var i = 0; i < batch.Length; i++) Assert.True(MaxDiff(near[i], far[i]) > 1e-4, $"sample {i}: the guide did not change the actions");
        // A guide for one sample does not reach another's actions (each group's features are its members').
        var mixed = policy.SampleActions(batch, [1, 2], guides: [new PointGuide([10, 12], [50, 40]), new PointGuide(null, null)]);
        Assert.Equal(near[0], mixed[0]);
        Assert.Equal(far[1], mixed[1]);

        var own = policy.GeneratePointGuides(batch);
        Assert.Equal(batch.Length, own.Length);
        Assert.All(own, g => g.Validate());
        var generated = policy.SampleActions(batch, [1, 2]);
        var given = policy.SampleActions(batch, [1, 2], guides: own);
        for (var i = 0; i < batch.Length; i++) Assert.Equal(given[i], generated[i]);

        // A policy without point guidance still refuses guides.
        using var plain = Create();
        Assert.Throws<ArgumentException>(() => plain.SampleActions([batch[0]], [1], guides: [new PointGuide([1, 2], null)]));
    }

    [Fact]
    public void A_point_guided_training_loss_reads_the_samples_guides()
    {
        using var policy = Create(TinyInternVlaM1.PolicyConfig() with { PointGuidance = true });
        var actions = ActionChunk.Create(TinyInternVlaM1.ChunkLength, ActionDim, 0, static (values, _) =>
        {
            for (var i = 0; i < values.Length; i++) values[i] = MathF.Cos(i);
        });
        var batch = new TrainingBatch([new ActionSample(Observation(0), actions, Guide: new PointGuide([10, 12], [50, 40])), new ActionSample(Observation(2), actions)], []);
        using var scope = NewDisposeScope();
        var loss = policy.ComputeLoss(batch);
        loss.Total.backward();
        var projector = policy.NamedParameters().Single(p => p.Name == "point_projector.weight").Parameter;
        Assert.True(projector.grad is { } g && g.abs().sum().item<float>() > 0, "no gradient reaches the point projection");
    }

    private static float MaxDiff(ActionChunk a, ActionChunk b) =>
        a.Values.ToArray().Zip(b.Values.ToArray(), (x, y) => MathF.Abs(x - y)).Max();
}
