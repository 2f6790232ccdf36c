using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using VlaCloud.Datasets;
using VlaCloud.Sim;

namespace VlaCloud.Cli.Commands;

/// <summary>
/// <c>vlacloud sim …</c>: the built-in tabletop simulator's data (datasets, rollouts). Training and evaluating a policy
/// locally need libtorch and live in <c>vlacloud-lab sim</c>, which adds them to this group.
/// </summary>
internal static class SimCommands
{
    internal static readonly Option<string> TasksOption = new("--tasks")
    {
        Description = "Task kinds: pick_place, push, or both (alternated by episode)",
        DefaultValueFactory = _ => "both",
    };

    internal static readonly Option<int> ImageSizeOption = new("--image-size")
    {
        Description = "Camera image side in pixels",
        DefaultValueFactory = _ => 64,
    };

    /// <summary>The <c>sim</c> command group.</summary>
    public static Command Create() => new("sim", "Built-in tabletop simulator: generate datasets and roll out the scripted expert")
    {
        Generate(),
        Rollout(),
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
                            RgbImage.EncodePng(recorded.Frames[t].Images[camera.Name], camera.Width, camera.Height), cancellationToken);
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

    /// <summary>
    /// Refuses (prints the error, returns true) a <c>--seed-base</c> and <c>--episodes</c> pair that would run past a
    /// split's seeds (<see cref="SimSplits.SeedRangeFits"/>), before any scene is made.
    /// </summary>
    internal static bool SeedRangeRefused(int seedBase, int episodes)
    {
        if (SimSplits.SeedRangeFits(seedBase, episodes)) return false;
        ApiCommand.Error($"--seed-base must be at least 0 and --seed-base + --episodes at most {SimSplits.SeedStride}");
        return true;
    }

    internal static IReadOnlyList<TaskKind> ParseTasks(string value) => value switch
    {
        "both" => [TaskKind.PickPlace, TaskKind.Push],
        "pick_place" => [TaskKind.PickPlace],
        "push" => [TaskKind.Push],
        _ => throw new ArgumentException($"unknown task '{value}'; use pick_place, push or both"),
    };

    internal static string TaskName(TaskKind kind) => kind == TaskKind.PickPlace ? "pick_place" : "push";

    internal static ProgressColumn[] ProgressColumns() =>
        [new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn()];

    internal static string Num(int value) => value.ToString(CultureInfo.InvariantCulture);

    internal static string F(float value) => value.ToString("F3", CultureInfo.InvariantCulture);

    internal static string Pct(double value) => (value * 100).ToString("F1", CultureInfo.InvariantCulture) + "%";
}
