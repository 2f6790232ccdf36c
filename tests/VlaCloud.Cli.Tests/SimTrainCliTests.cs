using VlaCloud.Policy;
using VlaCloud.Testing;
using VlaCloud.Training;

namespace VlaCloud.Cli.Tests;

/// <summary><c>vlacloud sim generate</c> and <c>vlacloud-lab sim train</c> as a user runs them: a spatial base run, then a run started from it.</summary>
public sealed class SimTrainCliTests : IDisposable
{
    private readonly string folder = Path.Combine(Path.GetTempPath(), $"vlacloud-simtrain-{Guid.NewGuid():N}");
    private readonly Dictionary<string, string> env;

    public SimTrainCliTests() => env = new() { ["VLACLOUD_CONFIG"] = Path.Combine(folder, "config.json"), ["OMP_NUM_THREADS"] = "1" };

    public void Dispose()
    {
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
    }

    private async Task<CliRun> OkAsync(params string[] args)
    {
        var run = await Vlacloud.RunAsync(env, args);
        Assert.True(run.ExitCode == 0, $"vlacloud {string.Join(" ", args)}\n{run}");
        return run;
    }

    private async Task<CliRun> OkLabAsync(params string[] args)
    {
        var run = await Vlacloud.RunLabAsync(env, args);
        Assert.True(run.ExitCode == 0, $"vlacloud-lab {string.Join(" ", args)}\n{run}");
        return run;
    }

    private string In(string name) => Path.Combine(folder, name);

    private static void CopyFolder(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    [Fact]
    public async Task Sim_evaluate_takes_a_seed_base_and_ends_with_the_success_fractions()
    {
        var run = await OkLabAsync("sim", "evaluate", "-n", "2", "--envs", "2", "--seed-base", "5000", "--splits", "seen", "unseen");
        var lines = run.Out.TrimEnd().Split('\n');
        Assert.StartsWith("success_seen: ", lines[^2]);
        Assert.StartsWith("success_unseen: ", lines[^1]);
        Assert.Contains("seed_base: 5000", run.Out);
        var refused = await Vlacloud.RunLabAsync(env, "sim", "evaluate", "-n", "2", "--seed-base", "-1");
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("--seed-base", refused.Error);
    }

    [Trait("Category", "Slow")]
    [Fact]
    public async Task Sim_probe_scores_a_fresh_policys_chunks_on_dataset_frames_and_on_fresh_demonstrations_and_ends_with_the_sign_shares()
    {
        await OkAsync("sim", "generate", "-o", In("train"), "-n", "2");
        await OkLabAsync("sim", "train", "--mode", "vanilla", "--steps", "1", "--batch-size", "2", "--patch-size", "16", "--data", In("train"), "-o", In("fresh"));

        var onData = await OkLabAsync("sim", "probe", "--checkpoint", In("fresh"), "--data", In("train"), "--max-frames", "6", "--batch-size", "4", "--json", In("probe.json"));
        var lines = onData.Out.TrimEnd().Split('\n');
        Assert.StartsWith("sign_right_data: ", lines[^1]);
        Assert.InRange(double.Parse(lines[^1]["sign_right_data: ".Length..], System.Globalization.CultureInfo.InvariantCulture), 0, 1);
        Assert.Contains("frames_data: 6", onData.Out);
        var scores = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(In("probe.json"))).RootElement.EnumerateArray().Single();
        Assert.Equal(("data", 6), (scores.GetProperty("split").GetString(), scores.GetProperty("frames").GetInt32()));
        Assert.True(scores.GetProperty("mse").GetDouble() >= 0 && scores.GetProperty("zero_mse").GetDouble() > 0, scores.ToString());
        Assert.InRange(scores.GetProperty("gripper_right").GetDouble(), 0, 1);

        var fresh = await OkLabAsync("sim", "probe", "--checkpoint", In("fresh/policy"), "--seed-base", "7000", "-n", "1", "--splits", "seen", "unseen", "--max-frames", "5");
        var last = fresh.Out.TrimEnd().Split('\n')[^2..];
        Assert.StartsWith("sign_right_seen: ", last[0]);
        Assert.StartsWith("sign_right_unseen: ", last[1]);
        Assert.All(last, l => Assert.InRange(double.Parse(l[(l.IndexOf(':') + 2)..], System.Globalization.CultureInfo.InvariantCulture), 0, 1));
        Assert.Contains("mse_zero_unseen: ", fresh.Out);
        Assert.Contains("sign_majority_seen: ", fresh.Out);
        Assert.Contains("gripper_majority_seen: ", fresh.Out);
        Assert.Contains("sign_right_se_seen: ", fresh.Out);

        var mixed = await Vlacloud.RunLabAsync(env, "sim", "probe", "--checkpoint", In("fresh"), "--data", In("train"), "--splits", "seen");
        Assert.Equal(2, mixed.ExitCode);
        Assert.Contains("--data probes that dataset's frames", mixed.Error);
        var unbounded = await Vlacloud.RunLabAsync(env, "sim", "probe", "--checkpoint", In("fresh"), "--max-frames", "0");
        Assert.Equal(2, unbounded.ExitCode);
        Assert.Contains("--max-frames", unbounded.Error);
    }

    [Trait("Category", "Slow")]
    [Fact]
    public async Task Sim_probe_spatial_scores_a_spatial_policys_answers_against_the_simulators_labels_and_refuses_a_vanilla_policy()
    {
        await OkAsync("sim", "generate", "-o", In("train"), "-n", "2");
        await OkLabAsync("sim", "train", "--mode", "st4vla", "--steps", "1", "--batch-size", "2", "--patch-size", "16", "--data", In("train"),
            "--grounding", In("grounding"), "--grounding-episodes", "2", "-o", In("spatial"));

        var run = await OkLabAsync("sim", "probe", "--checkpoint", In("spatial"), "--seed-base", "7000", "-n", "1", "--splits", "seen", "unseen",
            "--max-frames", "6", "--spatial", "--spatial-frames", "4", "--json", In("probe.json"));
        foreach (var split in new[] { "seen", "unseen" })
        {
            Assert.Contains($"spatial_frames_{split}: 4", run.Out);
            foreach (var name in new[] { "point", "placement" })
            {
                Assert.Contains($"{name}_error_px_{split}: ", run.Out);
                Assert.Contains($"{name}_blind_error_px_{split}: ", run.Out);
                foreach (var key in new[] { "within_4px", "within_8px", "unanswered", "blind_within_4px", "blind_within_8px" })
                {
                    var line = run.Out.Split('\n').Single(l => l.StartsWith($"{name}_{key}_{split}: ", StringComparison.Ordinal));
                    Assert.InRange(double.Parse(line[(line.IndexOf(':') + 2)..], System.Globalization.CultureInfo.InvariantCulture), 0, 1);
                }
            }
        }
        // The sign shares stay the last lines for scripts that read the end.
        Assert.StartsWith("sign_right_unseen: ", run.Out.TrimEnd().Split('\n')[^1]);
        var spatial = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(In("probe.json"))).RootElement.EnumerateArray().First().GetProperty("spatial");
        Assert.Equal(4, spatial.GetProperty("target").GetProperty("questions").GetInt32());
        Assert.True(spatial.GetProperty("destination").GetProperty("blind_error_px").GetDouble() >= 0);

        // A generated dataset's spatial annotations are its labels.
        var onData = await OkLabAsync("sim", "probe", "--checkpoint", In("spatial"), "--data", In("train"), "--max-frames", "4", "--spatial");
        Assert.Contains("point_within_8px_data: ", onData.Out);
        // Without them there is nothing to score against: refused, pointing at fresh demonstrations.
        CopyFolder(In("train"), In("bare"));
        File.Delete(Path.Combine(In("bare"), "meta", "spatial_annotations.jsonl"));
        var bare = await Vlacloud.RunLabAsync(env, "sim", "probe", "--checkpoint", In("spatial"), "--data", In("bare"), "--max-frames", "4", "--spatial");
        Assert.Equal(2, bare.ExitCode);
        // The message is long enough to wrap on the console.
        Assert.Contains("hasnospatialannotations", System.Text.RegularExpressions.Regex.Replace(bare.Error, @"\s+", ""));

        await OkLabAsync("sim", "train", "--mode", "vanilla", "--steps", "1", "--batch-size", "2", "--patch-size", "16", "--data", In("train"), "-o", In("vanilla"));
        var refused = await Vlacloud.RunLabAsync(env, "sim", "probe", "--checkpoint", In("vanilla"), "--seed-base", "7000", "-n", "1", "--spatial");
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("trained vanilla", refused.Error);
    }

    [Trait("Category", "Slow")]
    [Fact]
    public async Task Sim_probe_and_evaluate_oracle_guides_act_a_point_guided_policy_on_the_simulators_labels_and_refuse_any_other()
    {
        await OkAsync("sim", "generate", "-o", In("train"), "-n", "2");
        await OkLabAsync("sim", "train", "--mode", "st4vla", "--point-guidance", "--spatial-kinds", "point", "placement", "--steps", "1", "--batch-size", "2",
            "--patch-size", "16", "--data", In("train"), "--grounding", In("grounding"), "--grounding-episodes", "2", "-o", In("guided"));

        var probe = await OkLabAsync("sim", "probe", "--checkpoint", In("guided"), "--seed-base", "7000", "-n", "1", "--splits", "seen",
            "--max-frames", "4", "--oracle-guides", "--json", In("probe.json"));
        Assert.Contains("guides: oracle\n", probe.Out);
        Assert.StartsWith("sign_right_seen: ", probe.Out.TrimEnd().Split('\n')[^1]);
        var scores = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(In("probe.json"))).RootElement.EnumerateArray().Single();
        Assert.Equal("oracle", scores.GetProperty("guides").GetString());
        // The same frames on System 2's points, and on a dataset's annotations.
        Assert.Contains("guides: system2\n", (await OkLabAsync("sim", "probe", "--checkpoint", In("guided"), "--seed-base", "7000", "-n", "1", "--splits", "seen", "--max-frames", "4")).Out);
        Assert.Contains("guides: oracle\n", (await OkLabAsync("sim", "probe", "--checkpoint", In("guided"), "--data", In("train"), "--max-frames", "4", "--oracle-guides")).Out);

        var evaluate = await OkLabAsync("sim", "evaluate", "--checkpoint", In("guided"), "-n", "1", "--envs", "1", "--seed-base", "7000", "--splits", "seen", "unseen",
            "--oracle-guides", "--json", In("eval.json"));
        var lines = evaluate.Out.TrimEnd().Split('\n');
        Assert.StartsWith("success_seen: ", lines[^2]);
        Assert.StartsWith("success_unseen: ", lines[^1]);
        Assert.Contains("guides: oracle", lines);
        Assert.All(System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(In("eval.json"))).RootElement.EnumerateArray(),
            r => Assert.Equal("oracle", r.GetProperty("guides").GetString()));

        // Without labels, or without the point token to read them with, refused.
        CopyFolder(In("train"), In("bare"));
        File.Delete(Path.Combine(In("bare"), "meta", "spatial_annotations.jsonl"));
        var bare = await Vlacloud.RunLabAsync(env, "sim", "probe", "--checkpoint", In("guided"), "--data", In("bare"), "--max-frames", "4", "--oracle-guides");
        Assert.Equal(2, bare.ExitCode);
        Assert.Contains("hasnospatialannotations", System.Text.RegularExpressions.Regex.Replace(bare.Error, @"\s+", ""));
        await OkLabAsync("sim", "train", "--mode", "vanilla", "--steps", "1", "--batch-size", "2", "--patch-size", "16", "--data", In("train"), "-o", In("vanilla"));
        foreach (var command in new[] { "probe", "evaluate" })
        {
            var refused = await Vlacloud.RunLabAsync(env, "sim", command, "--checkpoint", In("vanilla"), "--seed-base", "7000", "-n", "1", "--splits", "seen", "--oracle-guides");
            Assert.Equal(2, refused.ExitCode);
            Assert.Contains("nopointguidance", System.Text.RegularExpressions.Regex.Replace(refused.Error, @"\s+", ""));
            Assert.DoesNotContain("   at ", refused.Error);
        }
        var expert = await Vlacloud.RunLabAsync(env, "sim", "evaluate", "-n", "1", "--splits", "seen", "--oracle-guides");
        Assert.Equal(2, expert.ExitCode);
        Assert.Contains("--oracle-guides", expert.Error);
    }

    [Fact]
    public async Task Sim_rollout_frames_come_with_each_frames_state_and_instruction_to_act_on()
    {
        var run = await OkAsync("sim", "rollout", "--frames", In("frames"));

        var first = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(In("frames"), "observation_000.json"))).RootElement;
        var instruction = first.GetProperty("instruction").GetString()!;
        Assert.Contains(instruction, run.Out);
        Assert.Equal(3, first.GetProperty("state").GetArrayLength());
        Assert.True(File.Exists(Path.Combine(In("frames"), "main_000.png")));
        // The state is the frame's, not a constant: the robot moves during the episode.
        var frames = Directory.GetFiles(In("frames"), "observation_*.json").Order().ToList();
        var last = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(frames[^1])).RootElement.GetProperty("state");
        Assert.NotEqual(first.GetProperty("state").GetRawText(), last.GetRawText());
        Assert.Equal(Directory.GetFiles(In("frames"), "main_*.png").Length, frames.Count);
    }

    [Trait("Category", "Slow")]
    [Fact]
    public async Task A_run_started_with_init_keeps_the_base_runs_architecture_and_weights_and_refuses_to_change_it()
    {
        await OkAsync("sim", "generate", "-o", In("train"), "-n", "2");
        await OkAsync("sim", "generate", "-o", In("stills"), "-n", "6", "--split", "grounding", "--frames-per-episode", "1");
        await OkLabAsync("sim", "train", "--steps", "2", "--spatial-pretrain-steps", "1", "--data", In("train"), "--grounding", In("stills"),
            "--patch-size", "16", "--vision-stem", "conv", "--spatial-kinds", "point", "--checkpoint-interval", "1", "-o", In("base"));
        var saved = CoTrainingOptions.FromJson(File.ReadAllText(Path.Combine(In("base"), "checkpoints", "step-00000002", "options.json")));
        Assert.Equal([SpatialKind.Point], saved.SpatialKinds);

        var refused = await Vlacloud.RunLabAsync(env, "sim", "train", "--steps", "1", "--data", In("train"), "--init", In("base"), "--vision-stem", "patch", "-o", In("refused"));
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("--init keeps the base checkpoint's architecture", refused.Error);
        Assert.DoesNotContain("   at ", refused.Error);

        // Learning rates at zero: the policy written is the base's weights under the new run's switches.
        await OkLabAsync("sim", "train", "--mode", "vanilla", "--steps", "1", "--warmup", "0", "--lr-scale", "0", "--data", In("train"), "--init", In("base"), "-o", In("tuned"));
        using var basePolicy = VlaPolicy.Load(In("base/policy"));
        using var tuned = VlaPolicy.Load(In("tuned/policy"));
        Assert.Equal(("conv", 16, false, true), (tuned.Config.VisionStem, tuned.Config.PatchSize, basePolicy.Config.Vanilla, tuned.Config.Vanilla));
        Assert.Equal(File.ReadAllBytes(In($"base/policy/{PolicyCheckpoint.WeightsFile}")), File.ReadAllBytes(In($"tuned/policy/{PolicyCheckpoint.WeightsFile}")));

        // --point-guidance adds the point token to the base and keeps every weight it had.
        await OkLabAsync("sim", "train", "--point-guidance", "--spatial-kinds", "point", "placement", "--steps", "1", "--warmup", "0", "--lr-scale", "0",
            "--data", In("train"), "--grounding", In("stills"), "--init", In("base"), "-o", In("guided"));
        using var guided = VlaPolicy.Load(In("guided/policy"));
        Assert.True(guided.Config.PointGuidance);
        var guidedWeights = guided.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        foreach (var (name, weight) in basePolicy.NamedParameters())
            Assert.True(weight.allclose(guidedWeights[name], rtol: 0, atol: 0), $"{name} changed");
        var vanillaGuided = await Vlacloud.RunLabAsync(env, "sim", "train", "--mode", "vanilla", "--point-guidance", "--steps", "1", "--data", In("train"), "-o", In("refused"));
        Assert.Equal(2, vanillaGuided.ExitCode);
        Assert.Contains("--point-guidance reads System 2's spatial answers", vanillaGuided.Error);
    }

    [Trait("Category", "Slow")]
    [Theory]
    [InlineData("st4vla")]
    [InlineData("vanilla")]
    public async Task A_short_run_of_the_built_in_m1_tiny_config_gives_a_checkpoint_that_sim_evaluate_and_the_serving_path_act_with(string mode)
    {
        await OkAsync("sim", "generate", "-o", In("train"), "-n", "2");
        await OkAsync("sim", "generate", "-o", In("stills"), "-n", "4", "--split", "grounding", "--frames-per-episode", "1");
        string[] train = ["sim", "train", "--config", "m1-tiny", "--mode", mode, "--steps", "2", "--batch-size", "2", "--checkpoint-interval", "1",
            "--vlm-lr", "0.001", "--expert-lr", "0.002", "--rest-lr", "0.0015", "--data", In("train"), "--grounding", In("stills"), "-o", In("m1")];
        var trained = await OkLabAsync(train);
        // Every run says whether its action head reads the observation, on screen and in summary.json.
        Assert.Contains("with another frame's", trained.Out);
        var check = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(In("m1/summary.json"))).RootElement.GetProperty("condition_check");
        Assert.True(check.GetProperty("own_observation").GetDouble() > 0 && check.GetProperty("other_observation").GetDouble() > 0, check.ToString());
        // ... and at every checkpoint in condition.jsonl, the last line being the final policy's check.
        var lines = (await File.ReadAllLinesAsync(In("m1/condition.jsonl"))).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal([1, 2], lines.Select(l => l.GetProperty("step").GetInt32()));
        Assert.Equal(check.GetProperty("own_observation").GetDouble(), lines[^1].GetProperty("own_observation").GetDouble());
        Assert.Equal(1 - lines[0].GetProperty("own_observation").GetDouble() / lines[0].GetProperty("other_observation").GetDouble(), lines[0].GetProperty("gap").GetDouble(), 1e-12);
        // A process that died after saving step 2's checkpoint but before writing its line: the rerun resumes at step 2
        // and writes that line, once, with the same figures (the measurement's draws come from the run's seed).
        await File.WriteAllLinesAsync(In("m1/condition.jsonl"), (await File.ReadAllLinesAsync(In("m1/condition.jsonl")))[..1]);
        await OkLabAsync(train);
        var rerun = (await File.ReadAllLinesAsync(In("m1/condition.jsonl"))).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal([1, 2], rerun.Select(l => l.GetProperty("step").GetInt32()));
        Assert.Equal(lines[1].GetProperty("own_observation").GetDouble(), rerun[1].GetProperty("own_observation").GetDouble());
        // The three learning rates given are the run's peaks.
        var options = CoTrainingOptions.FromJson(File.ReadAllText(Path.Combine(In("m1"), "checkpoints", "step-00000002", "options.json")));
        Assert.Equal((0.001, 0.002, 0.0015), (options.VlmLearningRate, options.ExpertLearningRate, options.RestLearningRate));
        var badRate = await Vlacloud.RunLabAsync(env, "sim", "train", "--steps", "1", "--expert-lr", "0", "--data", In("train"), "-o", In("refused"));
        Assert.Equal(2, badRate.ExitCode);
        Assert.Contains("--expert-lr must be in (0, 1)", badRate.Error);
        Assert.False(Directory.Exists(In("refused")));

        var run = await OkLabAsync("sim", "evaluate", "--checkpoint", In("m1"), "-n", "1", "--seed-base", "7000", "--splits", "seen", "unseen", "--json", In("eval.json"));
        Assert.StartsWith("success_unseen: ", run.Out.TrimEnd().Split('\n')[^1]);
        var splits = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(In("eval.json"))).RootElement;
        Assert.Equal(["seen", "unseen"], splits.EnumerateArray().Select(s => s.GetProperty("split").GetString()!));
        Assert.All(splits.EnumerateArray(), s => Assert.Equal(1, s.GetProperty("episodes").GetInt32()));

        // The serving path loads a policy folder with a weight budget (ModelCache) and samples a chunk from raw frames.
        using var policy = VlaPolicy.Load(In("m1/policy"), "cpu", "fp32", maxWeightBytes: 64L << 20);
        Assert.Equal((PolicyConfig.InternVlaM1Family, "m1-tiny", mode == "vanilla", false), (policy.Config.Family, policy.Config.Name, policy.Config.Vanilla, policy.Config.UseState));
        var chunk = SimPolicy.Expected(policy, policy.Normalization.Keys.Single(), seed: 3, steps: 2);
        Assert.Equal((8, 3), (chunk.Horizon, chunk.ActionDim));
        Assert.All(chunk.Values.ToArray(), v => Assert.True(float.IsFinite(v)));
        using var tar = VlaPolicy.Load(In("m1/policy.tar"));
        Assert.Equal(chunk, SimPolicy.Expected(tar, policy.Normalization.Keys.Single(), seed: 3, steps: 2));
    }

    [Trait("Category", "Slow")]
    [Fact]
    public async Task Sim_train_state_gives_an_m1_policy_that_reads_the_state_and_acts_and_is_refused_with_init()
    {
        await OkAsync("sim", "generate", "-o", In("train"), "-n", "2");
        await OkLabAsync("sim", "train", "--config", "m1-tiny", "--mode", "vanilla", "--state", "--steps", "1", "--batch-size", "2", "--checkpoint-interval", "1",
            "--data", In("train"), "-o", In("m1s"));
        using (var policy = VlaPolicy.Load(In("m1s/policy")))
        {
            Assert.True(policy.Config.UseState);
            Assert.Contains(policy.NamedParameters(), p => p.Name.StartsWith("state_projector.", StringComparison.Ordinal));
        }
        var run = await OkLabAsync("sim", "evaluate", "--checkpoint", In("m1s"), "-n", "1", "--envs", "1", "--seed-base", "7000", "--splits", "seen");
        var lines = run.Out.TrimEnd().Split('\n');
        Assert.StartsWith("success_unseen: ", lines[^1]);
        Assert.Contains(lines, l => l.StartsWith("success_seen: ", StringComparison.Ordinal) && !l.EndsWith("n/a", StringComparison.Ordinal));
        // The state projection is part of the architecture, which a run started from a checkpoint keeps.
        var refused = await Vlacloud.RunLabAsync(env, "sim", "train", "--steps", "1", "--data", In("train"), "--init", In("m1s"), "--state", "-o", In("refused"));
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("--init keeps the base checkpoint's architecture", refused.Error);
    }

    [Trait("Category", "Slow")]
    [Fact]
    public async Task Sim_recipe_at_smoke_scale_rebuilds_base_arms_and_demo_and_names_the_recipe_and_commit()
    {
        var dry = await OkLabAsync("sim", "recipe", "--scale", "full", "--dry-run", "-o", In("plan"));
        Assert.Contains("total: ", dry.Out);
        Assert.Contains("--seed-base 100000", dry.Out);
        // Every action run of the plan gets the recipe's fine-tuning rates; the base keeps the defaults.
        Assert.Contains("--vlm-lr 0.001 --expert-lr 0.002 --rest-lr 0.002", dry.Out);
        Assert.DoesNotContain("--vlm-lr", dry.Out.Split('\n').Single(l => l.StartsWith("base ", StringComparison.Ordinal)));
        Assert.False(Directory.Exists(In("plan/base")));

        var run = await OkLabAsync("sim", "recipe", "--scale", "smoke", "-o", In("recipe"));
        var recipe = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(In("recipe/recipe.json"))).RootElement;
        var record = recipe.GetProperty("recipe");
        Assert.Equal("sim-m1-recipe-v3-smoke", record.GetProperty("name").GetString());
        Assert.Equal([0L, 1L, 2L], record.GetProperty("seeds").EnumerateArray().Select(s => s.GetInt64()));
        Assert.NotEqual(record.GetProperty("dev_seed_base").GetInt64(), record.GetProperty("report_seed_base").GetInt64());
        Assert.Contains("{instruction}", recipe.GetProperty("questions").GetProperty("point").GetString());

        var metrics = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(In("recipe/demo/metrics.json"))).RootElement;
        Assert.Equal("sim-m1-recipe-v3-smoke", metrics.GetProperty("recipe").GetString());
        Assert.Matches("^([0-9a-f]{40}(-dirty)?|unknown)$", metrics.GetProperty("commit").GetString());
        Assert.Equal(1, metrics.GetProperty("reporting").GetProperty("unseen").GetProperty("episodes").GetInt32());

        var results = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(In("recipe/results.json"))).RootElement.GetProperty("arms");
        foreach (var arm in new[] { "arm1-vanilla-from-base", "arm2-st4vla-latent", "arm3-st4vla-point-guidance", "arm4-vanilla-equal-compute" })
        {
            var reporting = results.GetProperty(arm).GetProperty("reporting");
            Assert.Equal(3, reporting.GetProperty("seen").GetProperty("episodes").GetInt32());
            Assert.Equal(3, reporting.GetProperty("unseen").GetProperty("per_seed").GetArrayLength());
            foreach (var seed in new[] { 0, 1, 2 }) Assert.True(File.Exists(In($"recipe/{arm}/seed-{seed}/policy.tar")));
        }
        Assert.DoesNotContain("not run", run.Out);
        using (var guided = VlaPolicy.Load(In("recipe/arm3-st4vla-point-guidance/seed-0/policy")))
            Assert.Equal((PolicyConfig.InternVlaM1Family, true), (guided.Config.Family, guided.Config.PointGuidance));
    }

    [Fact]
    public async Task The_recipe_plan_runs_arm_3_point_guidance_from_the_grounding_base_with_arm_2s_steps_and_the_placement_question()
    {
        var dry = await OkLabAsync("sim", "recipe", "--scale", "full", "--dry-run", "-o", In("plan"));
        Assert.DoesNotContain("not run", dry.Out);
        var lines = dry.Out.Split('\n');
        foreach (var seed in new[] { 0, 1, 2 })
        {
            var arm3 = lines.Single(l => l.StartsWith($"arm3-st4vla-point-guidance/seed-{seed} ", StringComparison.Ordinal));
            var arm2 = lines.Single(l => l.StartsWith($"arm2-st4vla-latent/seed-{seed} ", StringComparison.Ordinal));
            Assert.Contains("--mode st4vla --point-guidance", arm3);
            Assert.Contains($"--init {In("plan/base")}", arm3);
            Assert.Contains("--spatial-kinds point box trajectory placement", arm3);
            // Same steps, data and rates as arm 2.
            foreach (var part in new[] { "--steps 3000 ", "--episodes 200 ", "--vlm-lr 0.001 --expert-lr 0.002 --rest-lr 0.002" })
                Assert.Equal(arm2.Contains(part, StringComparison.Ordinal), arm3.Contains(part, StringComparison.Ordinal));
            Assert.Contains(lines, l => l.StartsWith($"arm3-st4vla-point-guidance/seed-{seed}/eval-report ", StringComparison.Ordinal));
        }
        var recipe = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(In("plan/recipe.json"))).RootElement;
        var arm = recipe.GetProperty("arms").EnumerateArray().Single(a => a.GetProperty("id").GetString() == "arm3-st4vla-point-guidance");
        Assert.True(arm.GetProperty("runnable").GetBoolean());
        Assert.Contains("{instruction}", recipe.GetProperty("questions").GetProperty("placement").GetString());
    }

    [Trait("Category", "Slow")]
    [Fact]
    public async Task Sim_train_point_guidance_gives_an_m1_policy_with_the_point_token_and_is_refused_with_vanilla()
    {
        await OkAsync("sim", "generate", "-o", In("train"), "-n", "2");
        await OkAsync("sim", "generate", "-o", In("stills"), "-n", "4", "--split", "grounding", "--frames-per-episode", "1");
        await OkLabAsync("sim", "train", "--config", "m1-tiny", "--mode", "st4vla", "--point-guidance", "--spatial-kinds", "point", "placement", "--steps", "2",
            "--batch-size", "2", "--data", In("train"), "--grounding", In("stills"), "-o", In("m1p"));
        using (var policy = VlaPolicy.Load(In("m1p/policy")))
        {
            Assert.Equal((PolicyConfig.InternVlaM1Family, true), (policy.Config.Family, policy.Config.PointGuidance));
            Assert.Contains(policy.NamedParameters(), p => p.Name == "point_projector.weight");
        }
        await OkLabAsync("sim", "evaluate", "--checkpoint", In("m1p"), "-n", "1", "--envs", "1", "--seed-base", "7000", "--splits", "seen");
        var refused = await Vlacloud.RunLabAsync(env, "sim", "train", "--config", "m1-tiny", "--mode", "vanilla", "--point-guidance", "--steps", "1", "--data", In("train"), "-o", In("refused"));
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("--point-guidance reads System 2's spatial answers", refused.Error);
    }

    [Theory]
    [InlineData("FramesPerEpisode", "sim", "generate", "-n", "1", "--frames-per-episode", "0")]
    [InlineData("position noise must not be negative", "sim", "generate", "-n", "1", "--noise-xy", "-0.1")]
    [InlineData("unknown split 'nowhere'", "sim", "generate", "-n", "1", "--split", "nowhere")]
    [InlineData("unknown split 'nowhere'", "sim", "rollout", "--split", "nowhere")]
    public async Task A_value_the_simulator_refuses_is_an_error_message_with_exit_code_2_not_a_stack_trace_and_writes_nothing(string expected, params string[] args)
    {
        var run = await Vlacloud.RunAsync(env, [.. args, .. args[1] == "generate" ? new[] { "-o", In("refused") } : []]);

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains(expected, run.Error);
        Assert.DoesNotContain("   at ", run.Error);
        Assert.False(Directory.Exists(In("refused")));
    }
}
