using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using VlaCloud.Sim;
using VlaCloud.Training;

namespace VlaCloud.Cli.Commands;

/// <summary><c>vlacloud sim …</c>: the built-in tabletop simulator (datasets, rollouts, evaluation).</summary>
internal static class SimCommands
{
    private static readonly Option<string> TasksOption = new("--tasks")
    {
        Description = "Task kinds: pick_place, push, or both (alternated by episode)",
        DefaultValueFactory = _ => "both",
    };

    private static readonly Option<int> ImageSizeOption = new("--image-size")
    {
        Description = "Camera image side in pixels",
        DefaultValueFactory = _ => 64,
    };

    /// <summary>The <c>sim</c> command group.</summary>
    public static Command Create() => new("sim", "Built-in tabletop simulator: generate datasets, roll out and evaluate")
    {
        Generate(),
        Rollout(),
        SimTrainCommands.Train(),
        Evaluate(),
    };

    private static Command Generate()
    {
        var output = new Option<DirectoryInfo>("--output", "-o") { Description = "Dataset folder (created; must be empty)", Required = true };
        var episodes = new Option<int>("--episodes", "-n") { Description = "Successful expert episodes to write", DefaultValueFactory = _ => 100 };
        var split = new Option<string>("--split") { Description = "Split the scenes come from (train, grounding, seen, unseen, ...)", DefaultValueFactory = _ => "train" };
        var framesPerEpisode = new Option<int?>("--frames-per-episode")
        {
            Description = "Keep only each episode's first N frames (grounding data: many scenes, few frames each); default: all",
        };
        var noiseXy = new Option<double>("--noise-xy")
        {
            Description = "Std of noise added to the effector moves the expert executes (its clean actions are recorded; DART), in table units; 0.02 is 40 % of a full step",
            DefaultValueFactory = _ => 0,
        };
        var noiseGripper = new Option<double>("--noise-gripper") { Description = "Chance per step that the executed gripper command is flipped", DefaultValueFactory = _ => 0 };
        var command = new Command("generate", "Record scripted-expert episodes as a LeRobot v2.1 dataset with spatial annotations")
        {
            output, episodes, split, TasksOption, ImageSizeOption, framesPerEpisode, noiseXy, noiseGripper,
        };
        command.SetLocalAction(async (parse, cancellationToken) =>
        {
            var options = new DatasetOptions(parse.GetValue(episodes), SimSplits.Named(parse.GetValue(split)!),
                ParseTasks(parse.GetValue(TasksOption)!), parse.GetValue(ImageSizeOption), parse.GetValue(framesPerEpisode),
                parse.GetValue(noiseXy) != 0 || parse.GetValue(noiseGripper) != 0 ? new ExpertNoise(parse.GetValue(noiseXy), parse.GetValue(noiseGripper)) : null);
            var root = parse.GetValue(output)!.FullName;
            DatasetSummary? summary = null;
            await AnsiConsole.Progress().Columns(ProgressColumns()).StartAsync(async ctx =>
            {
                var bar = ctx.AddTask($"episodes ({options.Split.Name})", maxValue: options.Episodes);
                summary = await DatasetGenerator.GenerateAsync(root, options, new InlineProgress<int>(n => bar.Value = n), cancellationToken);
            });
            var table = new Table().AddColumns("dataset", "episodes", "frames", "tasks", "expert runs", "split");
            table.AddRow(Markup.Escape(root), Num(summary!.Episodes), Num(summary.Frames), Num(summary.Tasks), Num(summary.Attempted), options.Split.Name);
            AnsiConsole.Write(table);
            return 0;
        });
        return command;
    }

    private static Command Rollout()
    {
        var split = new Option<string>("--split") { Description = "Split of the scene", DefaultValueFactory = _ => "seen" };
        var episode = new Option<int>("--episode") { Description = "Episode index within the split (its seed is the split's base + index)", DefaultValueFactory = _ => 0 };
        var task = new Option<string>("--task") { Description = "pick_place or push", DefaultValueFactory = _ => "pick_place" };
        var frames = new Option<DirectoryInfo?>("--frames") { Description = "Folder to save every frame of both cameras as PNG" };
        var command = new Command("rollout", "Run one scripted-expert episode and print each step")
        {
            split, episode, task, frames, ImageSizeOption,
        };
        command.SetLocalAction(async (parse, cancellationToken) =>
        {
            var kind = ParseTasks(parse.GetValue(task)!) is [var single] ? single : throw new ArgumentException("--task takes one kind");
            var scene = SceneGenerator.ForEpisode(SimSplits.Named(parse.GetValue(split)!), parse.GetValue(episode), kind);
            var embodiment = SimEmbodiment.Create(parse.GetValue(ImageSizeOption));
            using var renderer = new Renderer(embodiment.Cameras[0].Width);
            var recorded = EpisodeRecorder.RecordExpert(scene, embodiment, renderer);

            AnsiConsole.MarkupLine($"[bold]{Markup.Escape(scene.Task.Instruction)}[/]  (split {scene.Split}, seed {scene.Seed}, objects: {Markup.Escape(string.Join(", ", scene.Objects))})");
            var table = new Table().AddColumns("step", "x", "y", "gripper", "dx", "dy", "close", "target box", "trajectory (next points)");
            for (var t = 0; t < recorded.Frames.Count; t++)
            {
                var f = recorded.Frames[t];
                var labels = recorded.Labels[t];
                table.AddRow(Num(t), F(f.State[0]), F(f.State[1]), F(f.State[2]), F(f.Action[0]), F(f.Action[1]), F(f.Action[2]),
                    $"[[{string.Join(",", labels.Target.Box)}]]",
                    string.Join(" ", labels.Trajectory.Take(3).Select(p => $"({p[0]},{p[1]})")));
            }
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine(recorded.Success ? $"[green]success[/] after {recorded.Frames.Count} steps" : $"[red]failed[/] after {recorded.Frames.Count} steps");

            if (parse.GetValue(frames) is { } folder)
            {
                folder.Create();
                for (var t = 0; t < recorded.Frames.Count; t++)
                {
                    foreach (var camera in embodiment.Cameras)
                        await File.WriteAllBytesAsync(Path.Combine(folder.FullName, $"{camera.Name}_{t:000}.png"),
                            ImageCodec.EncodePng(recorded.Frames[t].Images[camera.Name], camera.Width, camera.Height), cancellationToken);
                    // What the frame shows, to act on it: the robot's state then and the episode's instruction.
                    await File.WriteAllTextAsync(Path.Combine(folder.FullName, $"observation_{t:000}.json"),
                        System.Text.Json.JsonSerializer.Serialize(new { state = recorded.Frames[t].State, instruction = scene.Task.Instruction, step = t }), cancellationToken);
                }
                AnsiConsole.MarkupLine($"frames saved to {Markup.Escape(folder.FullName)}");
            }
            return recorded.Success ? 0 : 1;
        });
        return command;
    }

    private static Command Evaluate()
    {
        var episodes = new Option<int>("--episodes", "-n") { Description = "Episodes per split", DefaultValueFactory = _ => 100 };
        var splits = new Option<string[]>("--splits")
        {
            Description = "Splits to evaluate",
            DefaultValueFactory = _ => [.. SimSplits.Evaluation.Select(s => s.Name)],
            AllowMultipleArgumentsPerToken = true,
        };
        var envs = new Option<int>("--envs") { Description = "Environments run in parallel (the controller's batch size)", DefaultValueFactory = _ => 8 };
        var execute = new Option<int>("--execute-steps") { Description = "Actions executed from each chunk before asking again", DefaultValueFactory = _ => 8 };
        var ensemble = new Option<int>("--ensemble")
        {
            Description = "Ask the policy every step and execute the adaptive ensemble of its last N chunks (the paper's execution; 0: execute chunks open-loop)",
            DefaultValueFactory = _ => 0,
        };
        var controller = new Option<string>("--controller") { Description = "Who acts: expert, or the policy given by --checkpoint", DefaultValueFactory = _ => "expert" };
        controller.AcceptOnlyFromAmong("expert", "policy");
        var checkpoint = new Option<string?>("--checkpoint") { Description = "A trained policy (run folder, policy folder or .tar); implies --controller policy" };
        var inferenceSteps = new Option<int?>("--inference-steps") { Description = "Euler steps per action chunk (default: the policy's config)" };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the results as JSON to this file" };
        var command = new Command("evaluate", "Closed-loop evaluation: success rate per split with a 95% Wilson interval")
        {
            episodes, splits, envs, execute, ensemble, controller, checkpoint, inferenceSteps, json, TasksOption, ImageSizeOption,
        };
        command.SetLocalAction(async (parse, cancellationToken) =>
        {
            var chosen = parse.GetValue(splits)!.Select(SimSplits.Named).ToArray();
            var options = new EvaluationOptions(parse.GetValue(episodes), parse.GetValue(envs), parse.GetValue(execute),
                ParseTasks(parse.GetValue(TasksOption)!), SimEmbodiment.Create(parse.GetValue(ImageSizeOption)));
            using var model = parse.GetValue(checkpoint) is { } path ? SimTrainCommands.LoadCheckpoint(path)
                : parse.GetValue(controller) == "policy" ? throw new ArgumentException("--controller policy needs --checkpoint") : null;
            IActionController policy = model is null ? new ScriptedExpert() : new PolicyController(model, options.Robot(), parse.GetValue(inferenceSteps));
            if (parse.GetValue(ensemble) is > 0 and var horizon) policy = new TemporalEnsemble(policy, horizon);
            var results = new List<SplitResult>();
            await AnsiConsole.Progress().Columns(ProgressColumns()).StartAsync(async ctx =>
            {
                var bars = chosen.ToDictionary(s => s.Name, s => ctx.AddTask(s.Name, autoStart: false, maxValue: options.EpisodesPerSplit));
                foreach (var split in chosen)
                {
                    var bar = bars[split.Name];
                    bar.StartTask();
                    var progress = new InlineProgress<EvaluationProgress>(p =>
                    {
                        bar.Value = p.Done;
                        bar.Description = $"{p.Split} {p.Successes}/{p.Done}";
                    });
                    results.Add(await Task.Run(() => Evaluator.EvaluateSplit(policy, split, options, progress, cancellationToken), cancellationToken));
                }
            });
            AnsiConsole.Write(ResultTable(results, options.TaskKinds()));
            if (parse.GetValue(json) is { } file)
                await File.WriteAllTextAsync(file.FullName, System.Text.Json.JsonSerializer.Serialize(results.Select(r => new
                {
                    split = r.Split, successes = r.Overall.Successes, episodes = r.Overall.Episodes, rate = r.Overall.Rate, low = r.Overall.Low, high = r.Overall.High,
                    by_task = r.ByTask.ToDictionary(kv => TaskName(kv.Key), kv => new { kv.Value.Successes, kv.Value.Episodes }), mean_steps = r.MeanSteps,
                    target_first = r.TargetFirst.Successes, other_first = r.OtherFirst.Successes, mean_progress = r.MeanProgress,
                }), new System.Text.Json.JsonSerializerOptions { WriteIndented = true }), cancellationToken);
            return 0;
        });
        return command;
    }

    /// <summary>The final table: one row per split.</summary>
    internal static Table ResultTable(IReadOnlyList<SplitResult> results, IReadOnlyList<TaskKind> kinds)
    {
        var table = new Table().AddColumns("split", "episodes", "success", "95% interval");
        foreach (var kind in kinds) table.AddColumn(TaskName(kind));
        table.AddColumns("target first", "other first", "progress", "mean steps", "controller calls");
        foreach (var r in results)
        {
            var row = new List<string>
            {
                r.Split, Num(r.Overall.Episodes), Pct(r.Overall.Rate), $"[[{Pct(r.Overall.Low)}, {Pct(r.Overall.High)}]]",
            };
            row.AddRange(kinds.Select(k => r.ByTask.TryGetValue(k, out var s) ? $"{Pct(s.Rate)} ({s.Successes}/{s.Episodes})" : "-"));
            row.Add($"{Pct(r.TargetFirst.Rate)} ({r.TargetFirst.Successes})");
            row.Add($"{Pct(r.OtherFirst.Rate)} ({r.OtherFirst.Successes})");
            row.Add(Pct(r.MeanProgress));
            row.Add(r.MeanSteps.ToString("F1", CultureInfo.InvariantCulture));
            row.Add(Num(r.ControllerCalls));
            table.AddRow([.. row]);
        }
        return table;
    }

    private static SimEmbodiment Robot(this EvaluationOptions options) => options.Embodiment ?? SimEmbodiment.Tabletop;

    private static IReadOnlyList<TaskKind> TaskKinds(this EvaluationOptions options) =>
        options.Tasks is { Count: > 0 } tasks ? tasks : [TaskKind.PickPlace, TaskKind.Push];

    internal static IReadOnlyList<TaskKind> ParseTasks(string value) => value switch
    {
        "both" => [TaskKind.PickPlace, TaskKind.Push],
        "pick_place" => [TaskKind.PickPlace],
        "push" => [TaskKind.Push],
        _ => throw new ArgumentException($"unknown task '{value}'; use pick_place, push or both"),
    };

    private static string TaskName(TaskKind kind) => kind == TaskKind.PickPlace ? "pick_place" : "push";

    private static ProgressColumn[] ProgressColumns() =>
        [new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn()];

    private static string Num(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string F(float value) => value.ToString("F3", CultureInfo.InvariantCulture);

    private static string Pct(double value) => (value * 100).ToString("F1", CultureInfo.InvariantCulture) + "%";
}
