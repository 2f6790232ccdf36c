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
        var spatial = new Option<bool>("--spatial")
        {
            Description = "Also ask System 2 the point and placement questions on the probed frames and score its answers against the simulator's labels "
                + "(pixel error, within 4 / 8 px, unanswered, and the blind mean-label baseline); not for a vanilla policy",
        };
        var spatialFrames = new Option<int>("--spatial-frames")
        {
            Description = $"Most frames per split asked the spatial questions (decoding costs more than a chunk): the probed frames thinned evenly to this many (at most {MaxFramesLimit})",
            DefaultValueFactory = _ => 200,
        };
        var oracle = new Option<bool>("--oracle-guides")
        {
            Description = "A point-guided policy acts on each frame's labelled target and destination centres instead of System 2's points "
                + "(a diagnostic of what System 2's pointing costs, never for reported results)",
        };
        var command = new Command("probe",
            "Open-loop direction probe: the policy's chunk at each frame of expert demonstrations against the expert's (MSE of dx / dy, share of signs right, gripper right)")
        {
            checkpoint, data, splits, episodes, seedBase, maxFrames, batch, threshold, inferenceSteps, json, spatial, spatialFrames, oracle, SimCommands.TasksOption, SimCommands.ImageSizeOption,
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
            if (parse.GetValue(spatialFrames) is < 1 or > MaxFramesLimit)
            {
                ApiCommand.Error($"--spatial-frames must be within [1, {MaxFramesLimit}]");
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
            var askSpatial = parse.GetValue(spatial);
            if (askSpatial && policy.Config.Vanilla)
            {
                ApiCommand.Error("--spatial scores System 2's answers to spatial questions, and this policy was trained vanilla (no spatial loss): it was never taught to answer them");
                return ApiCommand.LocalError;
            }
            var oracleGuides = parse.GetValue(oracle);
            if (oracleGuides && !policy.Config.PointGuidance)
            {
                ApiCommand.Error("--oracle-guides replaces System 2's points in a point-guided policy, and this policy has no point guidance (it was not trained with --point-guidance)");
                return ApiCommand.LocalError;
            }
            var controller = new PolicyController(policy, embodiment, parse.GetValue(inferenceSteps), oracleGuides: oracleGuides);
            var guides = GuidesName(policy.Config.PointGuidance, oracleGuides);
            var clock = System.Diagnostics.Stopwatch.StartNew();

            var results = new List<(string Split, DirectionScore Score)>();
            var spatialResults = new List<SpatialAnswerScore?>();
            if (dataFolder is not null)
            {
                var frames = await SimTrainingSets.LoadAsync(dataFolder.FullName, null, TrainingMode.Vanilla, cancellationToken);
                // A dataset's labels are its spatial annotations, read into the episodes' guides; without them there is nothing to score or act on.
                if ((askSpatial || oracleGuides) && !frames.Episodes.Any(e => e.Guides?.Any(g => g is not null) == true))
                {
                    ApiCommand.Error($"{(askSpatial ? "--spatial" : "--oracle-guides")} needs labelled frames and {dataFolder.FullName} has no spatial annotations (meta/spatial_annotations.jsonl); "
                        + "probe fresh expert demonstrations instead (leave out --data), which the simulator labels");
                    return ApiCommand.LocalError;
                }
                results.Add(("data", await Task.Run(() => Probe(frames), cancellationToken)));
                spatialResults.Add(askSpatial ? await Task.Run(() => Spatial(frames), cancellationToken) : null);
            }
            else
            {
                var normalization = policy.Normalization[embodiment.Name];
                foreach (var split in chosen)
                {
                    var frames = await Task.Run(() => DirectionProbe.Demonstrations(controller, split, parse.GetValue(episodes), parse.GetValue(seedBase),
                        tasks.Count > 0 ? tasks : [TaskKind.PickPlace, TaskKind.Push], embodiment, normalization, cancellationToken), cancellationToken);
                    results.Add((split.Name, await Task.Run(() => Probe(frames), cancellationToken)));
                    spatialResults.Add(askSpatial ? await Task.Run(() => Spatial(frames), cancellationToken) : null);
                }
            }

            DirectionScore Probe(TrainingData frames) => DirectionProbe.Run(controller, frames, DirectionProbe.Frames(frames, parse.GetValue(maxFrames)),
                parse.GetValue(batch), parse.GetValue(threshold), cancellationToken);

            // The spatial frames are the probed ones thinned evenly, so both scores describe the same scenes.
            SpatialAnswerScore Spatial(TrainingData frames)
            {
                var probed = DirectionProbe.Frames(frames, parse.GetValue(maxFrames));
                var asked = probed.Count <= parse.GetValue(spatialFrames) ? probed
                    : [.. Enumerable.Range(0, parse.GetValue(spatialFrames)).Select(i => probed[(int)((long)i * probed.Count / parse.GetValue(spatialFrames))])];
                return DirectionProbe.RunSpatial(policy, frames, asked, parse.GetValue(batch), cancellationToken);
            }

            AnsiConsole.Write(ResultTable(results));
            if (askSpatial) AnsiConsole.Write(SpatialTable([.. results.Select((r, i) => (r.Split, spatialResults[i]!))]));
            var decoded = askSpatial ? $" and {spatialResults.Sum(s => s?.Frames ?? 0)} frames' point and placement answers decoded" : "";
            AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                $"{controller.Calls} forward passes{decoded} in {clock.Elapsed.TotalSeconds:F1} s; signs scored where the expert's |dx| or |dy| > {parse.GetValue(threshold):G3}"));
            if (parse.GetValue(json) is { } file)
                await File.WriteAllTextAsync(file.FullName, JsonSerializer.Serialize(results.Select((r, i) => new
                {
                    split = r.Split, guides, r.Score.Frames, r.Score.Steps, r.Score.MseX, r.Score.MseY, r.Score.ZeroMseX, r.Score.ZeroMseY, r.Score.Mse, r.Score.ZeroMse,
                    r.Score.SignedX, r.Score.SignRightX, r.Score.SignedY, r.Score.SignRightY, r.Score.SignRight, r.Score.SignedFirst, r.Score.SignRightFirst, r.Score.GripperRight, r.Score.MajoritySign, r.Score.MajorityGripper, r.Score.SignRightStdError,
                    sign_threshold = parse.GetValue(threshold),
                    spatial = spatialResults[i] is { } sp ? new
                    {
                        sp.Frames,
                        target = PointJson(sp.Target),
                        destination = PointJson(sp.Destination),
                    } : null,
                }), new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }), cancellationToken);
            // Plain lines last, the sign_right_<split> ones at the very end, for scripts that read the end of the output.
            Console.Out.WriteLine($"guides: {guides}");
            Console.Out.WriteLine(SummaryText(results, askSpatial ? spatialResults : null));
            return 0;
        });
        return command;
    }

    /// <summary>
    /// What a policy's point token read, for the <c>guides:</c> line and the JSON of <c>sim probe</c> and <c>sim evaluate</c>:
    /// <c>oracle</c> (the simulator's labels, <c>--oracle-guides</c>), <c>system2</c> (its own points) or <c>none</c> (no point guidance).
    /// </summary>
    internal static string GuidesName(bool pointGuidance, bool oracleGuides) => !pointGuidance ? "none" : oracleGuides ? "oracle" : "system2";

    /// <summary>
    /// <c>key: value</c> lines per split: <c>frames_</c>, <c>mse_</c>, <c>mse_zero_</c>, <c>gripper_right_</c> and
    /// <c>sign_right_first_</c>, <c>sign_majority_</c>, <c>gripper_majority_</c> (the blind baselines), <c>sign_right_se_</c> (its standard error over episodes),
    /// with <paramref name="spatial"/> System 2's answers (<see cref="SpatialLines"/>), then every split's <c>sign_right_&lt;split&gt;</c> as the last lines.
    /// </summary>
    internal static string SummaryText(IReadOnlyList<(string Split, DirectionScore Score)> results, IReadOnlyList<SpatialAnswerScore?>? spatial = null)
    {
        var lines = new List<string>();
        foreach (var ((split, score), i) in results.Select((r, i) => (r, i)))
        {
            lines.Add($"frames_{split}: {score.Frames.ToString(CultureInfo.InvariantCulture)}");
            lines.Add($"mse_{split}: {G(score.Mse)}");
            lines.Add($"mse_zero_{split}: {G(score.ZeroMse)}");
            lines.Add($"gripper_right_{split}: {G(score.GripperRight)}");
            lines.Add($"sign_right_first_{split}: {G(score.SignRightFirst)}");
            lines.Add($"sign_majority_{split}: {G(score.MajoritySign)}");
            lines.Add($"gripper_majority_{split}: {G(score.MajorityGripper)}");
            lines.Add($"sign_right_se_{split}: {(score.SignRightStdError is { } se ? G(se) : "n/a")}");
            if (spatial?[i] is { } answers) lines.AddRange(SpatialLines(split, answers));
        }
        lines.AddRange(results.Select(r => $"sign_right_{r.Split}: {G(r.Score.SignRight)}"));
        return string.Join('\n', lines);

        static string G(double x) => x.ToString("0.######", CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// <c>key: value</c> lines of one split's spatial answers: <c>spatial_frames_</c>, then for the target (<c>point_</c>) and
    /// the destination (<c>placement_</c>) <c>error_px_</c>, <c>within_4px_</c>, <c>within_8px_</c>, <c>unanswered_</c> and the blind
    /// baseline's <c>blind_error_px_</c>, <c>blind_within_4px_</c>, <c>blind_within_8px_</c> (an error with no answers is <c>n/a</c>).
    /// </summary>
    internal static IEnumerable<string> SpatialLines(string split, SpatialAnswerScore score)
    {
        yield return $"spatial_frames_{split}: {score.Frames.ToString(CultureInfo.InvariantCulture)}";
        foreach (var (name, s) in new[] { ("point", score.Target), ("placement", score.Destination) })
        {
            yield return $"{name}_error_px_{split}: {(s.MeanErrorPx is { } e ? G(e) : "n/a")}";
            yield return $"{name}_within_4px_{split}: {G(s.Within4)}";
            yield return $"{name}_within_8px_{split}: {G(s.Within8)}";
            yield return $"{name}_unanswered_{split}: {G(s.Unanswered)}";
            yield return $"{name}_blind_error_px_{split}: {(s.BlindErrorPx is { } b ? G(b) : "n/a")}";
            yield return $"{name}_blind_within_4px_{split}: {G(s.BlindWithin4)}";
            yield return $"{name}_blind_within_8px_{split}: {G(s.BlindWithin8)}";
        }

        static string G(double x) => x.ToString("0.######", CultureInfo.InvariantCulture);
    }

    private static object PointJson(PointAnswerScore s) => new
    {
        s.Questions, s.Answered, s.Unanswered, s.MeanErrorPx, s.Within4, s.Within8, s.BlindErrorPx, s.BlindWithin4, s.BlindWithin8,
    };

    private static Table SpatialTable(IReadOnlyList<(string Split, SpatialAnswerScore Score)> results)
    {
        var table = new Table().AddColumns("split", "question", "frames", "error px", "within 4 px", "within 8 px", "unanswered", "blind error px", "blind within 4 px", "blind within 8 px");
        foreach (var (split, score) in results)
            foreach (var (name, s) in new[] { ("point (target)", score.Target), ("placement (destination)", score.Destination) })
                table.AddRow(split, name, SimCommands.Num(s.Questions), Px(s.MeanErrorPx), SimCommands.Pct(s.Within4), SimCommands.Pct(s.Within8), SimCommands.Pct(s.Unanswered),
                    Px(s.BlindErrorPx), SimCommands.Pct(s.BlindWithin4), SimCommands.Pct(s.BlindWithin8));
        return table;

        static string Px(double? x) => x is { } v ? v.ToString("0.0", CultureInfo.InvariantCulture) : "-";
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
