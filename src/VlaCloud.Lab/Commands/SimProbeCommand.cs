using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using VlaCloud.Cli.Commands;
using VlaCloud.Sim;
using VlaCloud.Training;

namespace VlaCloud.Lab.Commands;

/// <summary>
/// <c>vlacloud-lab sim probe</c>: the open-loop direction probe (<see cref="DirectionProbe"/>) of a checkpoint, on the
/// frames of a demonstration dataset or on fresh expert demonstrations of evaluation splits, ending with
/// <c>sign_right_&lt;split&gt;: x</c> lines.
/// </summary>
internal static class SimProbeCommand
{
    /// <summary>Most frames a split may be probed on (each costs one chunk of the policy).</summary>
    internal const int MaxFramesLimit = 20_000;

    /// <summary>Most fresh demonstrations per split.</summary>
    internal const int MaxEpisodes = 1_000;

    /// <summary><c>sim probe</c>.</summary>
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "The policy: run folder, policy folder or .tar", Required = true };
        var data = new Option<DirectoryInfo?>("--data")
        {
            Description = "Probe on this demonstration dataset's frames (LeRobot, e.g. the run's training data) instead of fresh expert demonstrations",
        };
        var splits = new Option<string[]>("--splits")
        {
            Description = "Splits to record fresh expert demonstrations from (without --data)",
            DefaultValueFactory = _ => [.. SimSplits.Evaluation.Select(s => s.Name)],
            AllowMultipleArgumentsPerToken = true,
        };
        var episodes = new Option<int>("--episodes", "-n") { Description = $"Fresh demonstrations per split (without --data; at most {MaxEpisodes})", DefaultValueFactory = _ => 5 };
        var seedBase = new Option<int>("--seed-base")
        {
            Description = "Demonstration i of each split uses that split's seed base + this + i, as in sim evaluate; 0 gives the development scenes",
            DefaultValueFactory = _ => SimSplits.DevelopmentSeedBase,
        };
        var maxFrames = new Option<int>("--max-frames")
        {
            Description = $"Frames probed per split: all when there are fewer, else this many spread evenly (at most {MaxFramesLimit})",
            DefaultValueFactory = _ => 2_000,
        };
        var batch = new Option<int>("--batch-size") { Description = "Frames per forward pass", DefaultValueFactory = _ => 16 };
        var threshold = new Option<double>("--sign-threshold")
        {
            Description = "Expert dx / dy of at most this size (table units) are not scored for sign",
            DefaultValueFactory = _ => DirectionProbe.DefaultSignThreshold,
        };
        var inferenceSteps = new Option<int?>("--inference-steps") { Description = "Euler steps per action chunk (default: the policy's config)" };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the scores as JSON to this file" };
        var command = new Command("probe",
            "Open-loop direction probe: the policy's chunk at each frame of expert demonstrations against the expert's (MSE of dx / dy, share of signs right, gripper right)")
        {
            checkpoint, data, splits, episodes, seedBase, maxFrames, batch, threshold, inferenceSteps, json, SimCommands.TasksOption, SimCommands.ImageSizeOption,
        };
        command.SetLocalAction(async (parse, cancellationToken) =>
        {
            var dataFolder = parse.GetValue(data);
            if (dataFolder is not null && (parse.GetResult(splits) is { Implicit: false } || parse.GetResult(episodes) is { Implicit: false } || parse.GetResult(seedBase) is { Implicit: false }))
            {
                ApiCommand.Error("--data probes that dataset's frames; leave out --splits, --episodes and --seed-base");
                return ApiCommand.LocalError;
            }
            if (parse.GetValue(episodes) is < 1 or > MaxEpisodes)
            {
                ApiCommand.Error($"--episodes must be within [1, {MaxEpisodes}]");
                return ApiCommand.LocalError;
            }
            if (SimCommands.SeedRangeRefused(parse.GetValue(seedBase), parse.GetValue(episodes))) return ApiCommand.LocalError;
            if (parse.GetValue(maxFrames) is < 1 or > MaxFramesLimit)
            {
                ApiCommand.Error($"--max-frames must be within [1, {MaxFramesLimit}]");
                return ApiCommand.LocalError;
            }
            if (parse.GetValue(batch) is < 1 or > 256)
            {
                ApiCommand.Error("--batch-size must be within [1, 256]");
                return ApiCommand.LocalError;
            }
            if (parse.GetValue(threshold) is not (>= 0 and < 1))
            {
                ApiCommand.Error("--sign-threshold must be within [0, 1)");
                return ApiCommand.LocalError;
            }
            if (dataFolder is not null && !Directory.Exists(dataFolder.FullName))
            {
                ApiCommand.Error($"--data {dataFolder.FullName} does not exist");
                return ApiCommand.LocalError;
            }
            var chosen = parse.GetValue(splits)!.Select(SimSplits.Named).ToArray();
            var embodiment = SimEmbodiment.Create(parse.GetValue(SimCommands.ImageSizeOption));
            var tasks = SimCommands.ParseTasks(parse.GetValue(SimCommands.TasksOption)!);
            using var policy = SimTrainCommands.LoadCheckpoint(parse.GetValue(checkpoint)!);
            var controller = new PolicyController(policy, embodiment, parse.GetValue(inferenceSteps));
            var clock = System.Diagnostics.Stopwatch.StartNew();

            var results = new List<(string Split, DirectionScore Score)>();
            if (dataFolder is not null)
            {
                var frames = await SimTrainingSets.LoadAsync(dataFolder.FullName, null, TrainingMode.Vanilla, cancellationToken);
                results.Add(("data", await Task.Run(() => Probe(frames), cancellationToken)));
            }
            else
            {
                var normalization = policy.Normalization[embodiment.Name];
                foreach (var split in chosen)
                {
                    var frames = await Task.Run(() => DirectionProbe.Demonstrations(controller, split, parse.GetValue(episodes), parse.GetValue(seedBase),
                        tasks.Count > 0 ? tasks : [TaskKind.PickPlace, TaskKind.Push], embodiment, normalization, cancellationToken), cancellationToken);
                    results.Add((split.Name, await Task.Run(() => Probe(frames), cancellationToken)));
                }
            }

            DirectionScore Probe(TrainingData frames) => DirectionProbe.Run(controller, frames, DirectionProbe.Frames(frames, parse.GetValue(maxFrames)),
                parse.GetValue(batch), parse.GetValue(threshold), cancellationToken);

            AnsiConsole.Write(ResultTable(results));
            AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                $"{controller.Calls} forward passes in {clock.Elapsed.TotalSeconds:F1} s; signs scored where the expert's |dx| or |dy| > {parse.GetValue(threshold):G3}"));
            if (parse.GetValue(json) is { } file)
                await File.WriteAllTextAsync(file.FullName, JsonSerializer.Serialize(results.Select(r => new
                {
                    split = r.Split, r.Score.Frames, r.Score.Steps, r.Score.MseX, r.Score.MseY, r.Score.ZeroMseX, r.Score.ZeroMseY, r.Score.Mse, r.Score.ZeroMse,
                    r.Score.SignedX, r.Score.SignRightX, r.Score.SignedY, r.Score.SignRightY, r.Score.SignRight, r.Score.SignedFirst, r.Score.SignRightFirst, r.Score.GripperRight, r.Score.MajoritySign, r.Score.MajorityGripper, r.Score.SignRightStdError,
                    sign_threshold = parse.GetValue(threshold),
                }), new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }), cancellationToken);
            // Plain lines last, the sign_right_<split> ones at the very end, for scripts that read the end of the output.
            Console.Out.WriteLine(SummaryText(results));
            return 0;
        });
        return command;
    }

    /// <summary>
    /// <c>key: value</c> lines per split: <c>frames_</c>, <c>mse_</c>, <c>mse_zero_</c>, <c>gripper_right_</c> and
    /// <c>sign_right_first_</c>, <c>sign_majority_</c>, <c>gripper_majority_</c> (the blind baselines), <c>sign_right_se_</c> (its standard error over episodes), then every split's <c>sign_right_&lt;split&gt;</c> as the last lines.
    /// </summary>
    internal static string SummaryText(IReadOnlyList<(string Split, DirectionScore Score)> results)
    {
        var lines = new List<string>();
        foreach (var (split, score) in results)
        {
            lines.Add($"frames_{split}: {score.Frames.ToString(CultureInfo.InvariantCulture)}");
            lines.Add($"mse_{split}: {G(score.Mse)}");
            lines.Add($"mse_zero_{split}: {G(score.ZeroMse)}");
            lines.Add($"gripper_right_{split}: {G(score.GripperRight)}");
            lines.Add($"sign_right_first_{split}: {G(score.SignRightFirst)}");
            lines.Add($"sign_majority_{split}: {G(score.MajoritySign)}");
            lines.Add($"gripper_majority_{split}: {G(score.MajorityGripper)}");
            lines.Add($"sign_right_se_{split}: {(score.SignRightStdError is { } se ? G(se) : "n/a")}");
        }
        lines.AddRange(results.Select(r => $"sign_right_{r.Split}: {G(r.Score.SignRight)}"));
        return string.Join('\n', lines);

        static string G(double x) => x.ToString("0.######", CultureInfo.InvariantCulture);
    }

    private static Table ResultTable(IReadOnlyList<(string Split, DirectionScore Score)> results)
    {
        var table = new Table().AddColumns("split", "frames", "steps", "MSE dx", "MSE dy", "zero MSE dx", "zero MSE dy", "sign dx right", "sign dy right", "sign right",
            "± (over episodes)", "majority sign", "first step sign right", "gripper right", "majority gripper");
        foreach (var (split, s) in results)
            table.AddRow(split, SimCommands.Num(s.Frames), SimCommands.Num(s.Steps), E(s.MseX), E(s.MseY), E(s.ZeroMseX), E(s.ZeroMseY),
                $"{SimCommands.Pct(s.SignRightX)} ({SimCommands.Num(s.SignedX)})", $"{SimCommands.Pct(s.SignRightY)} ({SimCommands.Num(s.SignedY)})",
                SimCommands.Pct(s.SignRight), s.SignRightStdError is { } se ? SimCommands.Pct(se) : "-", SimCommands.Pct(s.MajoritySign), $"{SimCommands.Pct(s.SignRightFirst)} ({SimCommands.Num(s.SignedFirst)})", SimCommands.Pct(s.GripperRight), SimCommands.Pct(s.MajorityGripper));
        return table;

        static string E(double x) => x.ToString("0.00000", CultureInfo.InvariantCulture);
    }
}
