using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using VlaCloud.Policy;
using VlaCloud.Policy.InternVla;
using VlaCloud.Sim;
using VlaCloud.Training;

using VlaCloud.Cli.Commands;

namespace VlaCloud.Lab.Commands;

/// <summary><c>vlacloud sim train</c> and the model side of <c>vlacloud sim evaluate</c>: the co-training loop on simulator data.</summary>
internal static class SimTrainCommands
{
    /// <summary><c>sim train</c>: train a policy on generated simulator data, resumably, with a progress bar.</summary>
    public static Command Train()
    {
        // The trainer's defaults: the options' defaults and help, and the rates --lr-scale multiplies.
        var defaults = new CoTrainingOptions();
        var mode = new Option<string>("--mode") { Description = "st4vla (spatial co-training + prompt) or vanilla (action loss only)", DefaultValueFactory = _ => "st4vla" };
        mode.AcceptOnlyFromAmong("st4vla", "vanilla");
        var config = new Option<string>("--config")
        {
            Description = "Model: tiny or small (the st4vla family), m1-tiny or m1-small (InternVLA-M1 at small sizes, Qwen2's byte-level vocabulary)",
            DefaultValueFactory = _ => "tiny",
        };
        config.AcceptOnlyFromAmong(["tiny", "small", .. InternVlaM1Sizes.BuiltIn.Keys]);
        var steps = new Option<int>("--steps") { Description = "Optimizer steps", DefaultValueFactory = _ => 1000 };
        var seed = new Option<long>("--seed") { Description = "Seed of weights, data order and noise", DefaultValueFactory = _ => 0 };
        var output = new Option<DirectoryInfo>("--out", "-o") { Description = "Run folder: checkpoints/ (resumable), policy/ and policy.tar, metrics.jsonl, condition.jsonl (own- vs other-observation action loss at each checkpoint)", Required = true };
        var data = new Option<DirectoryInfo>("--data") { Description = "Demonstrations (LeRobot); generated from the train split when missing", DefaultValueFactory = _ => new DirectoryInfo("data/sim-train") };
        var episodes = new Option<int>("--episodes") { Description = "Episodes to generate when --data is missing", DefaultValueFactory = _ => 200 };
        var grounding = new Option<DirectoryInfo>("--grounding") { Description = "Spatial grounding data (st4vla); generated from the grounding split when missing", DefaultValueFactory = _ => new DirectoryInfo("data/sim-grounding") };
        var groundingEpisodes = new Option<int>("--grounding-episodes") { Description = "Episodes to generate when --grounding is missing", DefaultValueFactory = _ => 200 };
        var batch = new Option<int>("--batch-size") { Description = "Action samples per step", DefaultValueFactory = _ => defaults.BatchSize };
        var ratio = new Option<double>("--spatial-ratio") { Description = "Spatial samples per action sample (st4vla)", DefaultValueFactory = _ => defaults.SpatialRatio };
        var pretrain = new Option<int>("--spatial-pretrain-steps") { Description = "Steps of spatial grounding alone at the start (st4vla; the paper's stage 1), counted in --steps", DefaultValueFactory = _ => 0 };
        var kinds = new Option<string[]>("--spatial-kinds")
        {
            Description = $"Spatial question kinds to draw from (st4vla): {string.Join(", ", SpatialPrompts.WireNames)} (placement: where the object goes)",
            AllowMultipleArgumentsPerToken = true,
            DefaultValueFactory = _ => ["point", "box", "trajectory"],
        };
        kinds.AcceptOnlyFromAmong([.. SpatialPrompts.WireNames]);
        var decay = new Option<double>("--gradient-decay") { Description = "Scale of the action gradient into the VLM", DefaultValueFactory = _ => defaults.GradientDecay };
        var spatialWeight = new Option<double>("--spatial-loss-weight") { Description = "Weight of the spatial cross-entropy", DefaultValueFactory = _ => defaults.SpatialLossWeight };
        var lr = new Option<double>("--lr-scale") { Description = "Multiplies every default learning rate (not the ones given with --vlm-lr, --expert-lr, --rest-lr)", DefaultValueFactory = _ => 1.0 };
        var vlmLr = new Option<double?>("--vlm-lr") { Description = $"Peak learning rate of System 2 (the VLM); default {defaults.VlmLearningRate:G3} × --lr-scale" };
        var expertLr = new Option<double?>("--expert-lr") { Description = $"Peak learning rate of the action expert; default {defaults.ExpertLearningRate:G3} × --lr-scale" };
        var restLr = new Option<double?>("--rest-lr") { Description = $"Peak learning rate of the rest (queries, bridge); default {defaults.RestLearningRate:G3} × --lr-scale" };
        var warmup = new Option<int>("--warmup") { Description = "Warm-up steps", DefaultValueFactory = _ => defaults.WarmupSteps };
        var patch = new Option<int?>("--patch-size") { Description = "ViT patch side (default: the config's); 16 on 64×64 images makes steps ~3× cheaper" };
        var stem = new Option<string?>("--vision-stem") { Description = "How the ViT turns pixels into patch tokens: patch (linear) or conv (convolutional stem); default: the config's" };
        stem.AcceptOnlyFromAmong("patch", "conv");
        var init = new Option<FileSystemInfo?>("--init")
        {
            Description = "Start from this checkpoint (a run folder, policy folder or tar) instead of fresh weights, e.g. a spatial pre-training run; its architecture is kept",
        };
        var guidance = new Option<bool>("--point-guidance")
        {
            Description = "st4vla: System 1 also reads the target's and destination's points as one more condition token (labels in training, System 2's point and placement answers when acting); give --spatial-kinds point and placement so System 2 learns both questions",
        };
        var useState = new Option<bool>("--state")
        {
            Description = "The action head also reads the robot state (InternVLA-M1: its state projection added to every condition token). The m1 configs leave it off, as released; tiny and small always read it",
        };
        var interval = new Option<int>("--checkpoint-interval") { Description = "Steps between resumable checkpoints", DefaultValueFactory = _ => defaults.CheckpointInterval };
        var command = new Command("train", "Train a policy on simulator demonstrations (st4vla co-training or the vanilla baseline); re-running resumes")
        {
            mode, config, steps, seed, output, data, episodes, grounding, groundingEpisodes, batch, ratio, pretrain, kinds, decay, spatialWeight, lr, vlmLr, expertLr, restLr, warmup, interval,
            patch, stem, init, guidance, useState,
        };
        command.SetLocalAction(async (parse, cancellationToken) =>
        {
            if (parse.GetValue(init) is not null && (parse.GetResult(patch) is not null || parse.GetResult(stem) is not null || parse.GetResult(config) is { Implicit: false } || parse.GetValue(useState)))
            {
                ApiCommand.Error("--init keeps the base checkpoint's architecture; leave out --config, --patch-size, --vision-stem and --state");
                return ApiCommand.LocalError;
            }
            var m1Sizes = InternVlaM1Sizes.BuiltIn.GetValueOrDefault(parse.GetValue(config)!);
            if (m1Sizes is not null && (parse.GetResult(patch) is not null || parse.GetResult(stem) is not null))
            {
                ApiCommand.Error($"{m1Sizes.Name} reads its patch sizes from its config; leave out --patch-size and --vision-stem");
                return ApiCommand.LocalError;
            }
            var isVanilla = parse.GetValue(mode) == "vanilla";
            if (isVanilla && parse.GetValue(guidance))
            {
                ApiCommand.Error("--point-guidance reads System 2's spatial answers, which --mode vanilla does not train");
                return ApiCommand.LocalError;
            }
            var scale = parse.GetValue(lr);
            foreach (var rate in new[] { vlmLr, expertLr, restLr })
                if (parse.GetValue(rate) is { } given && !(given > 0 && given < 1))
                {
                    ApiCommand.Error($"{rate.Name} must be in (0, 1)");
                    return ApiCommand.LocalError;
                }
            var options = new CoTrainingOptions
            {
                Steps = parse.GetValue(steps), Seed = parse.GetValue(seed), BatchSize = parse.GetValue(batch),
                SpatialRatio = parse.GetValue(ratio), SpatialPretrainSteps = parse.GetValue(pretrain),
                SpatialKinds = [.. parse.GetValue(kinds)!.Select(k => Enum.Parse<SpatialKind>(k, ignoreCase: true))], GradientDecay = parse.GetValue(decay), SpatialLossWeight = parse.GetValue(spatialWeight),
                VlmLearningRate = parse.GetValue(vlmLr) ?? defaults.VlmLearningRate * scale, ExpertLearningRate = parse.GetValue(expertLr) ?? defaults.ExpertLearningRate * scale,
                RestLearningRate = parse.GetValue(restLr) ?? defaults.RestLearningRate * scale, WarmupSteps = parse.GetValue(warmup),
                CheckpointInterval = parse.GetValue(interval), PointGuidance = parse.GetValue(guidance),
            };
            if (isVanilla) options = options.AsVanilla();
            var policyConfig = m1Sizes?.ToPolicyConfig() ?? (parse.GetValue(config) == "small" ? PolicyConfig.Small : PolicyConfig.Tiny);
            if (parse.GetValue(patch) is { } patchSize) policyConfig = policyConfig with { PatchSize = patchSize };
            if (parse.GetValue(stem) is { } visionStem) policyConfig = policyConfig with { VisionStem = visionStem };
            if (parse.GetValue(useState)) policyConfig = policyConfig with { UseState = true };
            var run = parse.GetValue(output)!.FullName;
            Directory.CreateDirectory(run);

            var trainFolder = parse.GetValue(data)!.FullName;
            var groundingFolder = parse.GetValue(grounding)!.FullName;
            var prepare = System.Diagnostics.Stopwatch.StartNew();
            await AnsiConsole.Status().StartAsync("preparing data", async ctx =>
            {
                ctx.Status($"demonstrations: {Markup.Escape(trainFolder)}");
                await SimTrainingSets.EnsureAsync(trainFolder, SimSplits.Train, parse.GetValue(episodes), cancellationToken: cancellationToken);
                if (!isVanilla)
                {
                    ctx.Status($"grounding: {Markup.Escape(groundingFolder)}");
                    await SimTrainingSets.EnsureAsync(groundingFolder, SimSplits.Grounding, parse.GetValue(groundingEpisodes), cancellationToken: cancellationToken);
                }
            });
            var trainingData = await SimTrainingSets.LoadAsync(trainFolder, isVanilla ? null : groundingFolder, options.Mode, cancellationToken);
            AnsiConsole.MarkupLine($"{trainingData.Episodes.Count} demonstrations ({trainingData.Frames} frames), {trainingData.Spatial.Count} spatial records, ready in {prepare.Elapsed.TotalSeconds:F1} s");

            using var initial = parse.GetValue(init) is { } basePolicy
                ? LoadCheckpoint(basePolicy.FullName)
                : CoTrainer.CreatePolicy(policyConfig, trainingData, options, tokenizerJson: m1Sizes is null ? null : QwenByteTokenizer.Json());
            var checkpoints = Path.Combine(run, "checkpoints");
            if (CoTrainer.Latest(checkpoints) is { } latest) AnsiConsole.MarkupLine($"resuming from step {latest.Step}");
            await using var metrics = new StreamWriter(Path.Combine(run, "metrics.jsonl"), append: true);
            // Whether the action head reads its observation, along the run: a low loss alone does not say it (see ConditionCheck).
            // The same held batches, noise and shuffle at every checkpoint (the run's seed), so the lines compare.
            var conditionPath = Path.Combine(run, "condition.jsonl");
            // A resumed run offers the checkpoint it resumed from again (a crash may have come before its line): one line per step.
            var logged = File.Exists(conditionPath)
                ? File.ReadLines(conditionPath).Where(l => l.Length > 0).Select(LoggedStep).ToHashSet()
                : [];
            // A JsonDocument rents its buffers from the shared pool: disposed, they go back to it.
            static int LoggedStep(string line)
            {
                using var document = JsonDocument.Parse(line);
                return document.RootElement.GetProperty("step").GetInt32();
            }
            await using var conditionLog = new StreamWriter(conditionPath, append: true);
            (int Step, ConditionUse Use)? lastCondition = null;
            void MeasureCondition(int step, VlaPolicy trained)
            {
                if (!logged.Add(step)) return;
                var use = ConditionCheck.Measure(trained, trainingData, seed: options.Seed);
                lastCondition = (step, use);
                conditionLog.WriteLine(JsonSerializer.Serialize(new
                {
                    step, own_observation = use.OwnObservation, other_observation = use.OtherObservation, gap = use.Gap, batches = use.Batches,
                }, MetricsJson));
                conditionLog.Flush();
            }
            CoTrainingResult? result = null;
            await AnsiConsole.Progress().Columns(
                [new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn()])
                .StartAsync(async ctx =>
                {
                    var bar = ctx.AddTask($"{options.Mode.ToString().ToLowerInvariant()} seed {options.Seed}", maxValue: options.Steps);
                    var progress = new InlineProgress<TrainingProgress>(p =>
                    {
                        bar.Value = p.Step;
                        bar.Description = string.Create(CultureInfo.InvariantCulture,
                            $"step {p.Step} loss {p.Loss:F3} (act {p.ActionLoss:F3}{(p.SpatialLoss is { } s ? $", sp {s:F3}" : "")}) lr {p.ExpertLearningRate:E1} {p.StepsPerSecond:F2} steps/s");
                        if (p.Step % 10 == 0 || p.Step == p.TotalSteps) metrics.WriteLine(JsonSerializer.Serialize(p, MetricsJson));
                    });
                    result = await Task.Run(() => CoTrainer.Train(initial, trainingData, options, checkpoints, progress, cancellationToken, MeasureCondition), cancellationToken);
                });
            using var policy = result!.Policy;
            // The last checkpoint's measurement is the final policy's; a run that resumed at its end measures afresh.
            var condition = lastCondition is { } measured && measured.Step == options.Steps ? measured.Use : ConditionCheck.Measure(policy, trainingData, seed: options.Seed);
            AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                $"action loss with each chunk's own observation {condition.OwnObservation:F4}, with another frame's {condition.OtherObservation:F4}: the observation explains {condition.Gap:P1} of it{(condition.Gap < 0.05 ? " [yellow](the action head barely reads the observation)[/]" : "")}"));
            policy.Save(Path.Combine(run, "policy"));
            await using (var tar = File.Create(Path.Combine(run, "policy.tar"))) policy.SaveTar(tar);
            var table = new Table().AddColumns("mode", "seed", "steps", "final loss", "action", "spatial", "train time", "steps/s", "policy");
            table.AddRow(options.Mode.ToString().ToLowerInvariant(), options.Seed.ToString(CultureInfo.InvariantCulture), $"{result.StartStep}→{result.Steps}",
                F(result.Final?.Loss), F(result.Final?.ActionLoss), F(result.Final?.SpatialLoss),
                $"{result.Elapsed.TotalSeconds:F0} s", F(result.Final?.StepsPerSecond), Markup.Escape(Path.Combine(run, "policy.tar")));
            AnsiConsole.Write(table);
            await File.WriteAllTextAsync(Path.Combine(run, "summary.json"), JsonSerializer.Serialize(new
            {
                mode = options.Mode.ToString().ToLowerInvariant(), seed = options.Seed, steps = options.Steps, start_step = result.StartStep,
                train_seconds = result.Elapsed.TotalSeconds, final = result.Final, condition_check = condition, options, frames = trainingData.Frames, spatial_records = trainingData.Spatial.Count,
            }, MetricsJson), cancellationToken);
            return 0;
        });
        return command;
    }

    /// <summary>Loads a checkpoint for evaluation: a run folder (its policy/), a policy folder or a tar.</summary>
    public static VlaPolicy LoadCheckpoint(string path)
    {
        var runPolicy = Path.Combine(path, "policy");
        return VlaPolicy.Load(Directory.Exists(runPolicy) ? runPolicy : path);
    }

    private static string F(double? value) => value is { } v ? v.ToString("F3", CultureInfo.InvariantCulture) : "-";

    private static readonly JsonSerializerOptions MetricsJson = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}
