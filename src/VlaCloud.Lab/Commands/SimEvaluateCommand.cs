using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using VlaCloud.Cli.Commands;
using VlaCloud.Sim;
using VlaCloud.Training;

namespace VlaCloud.Lab.Commands;

/// <summary>
/// <c>vlacloud-lab sim evaluate</c>: success rates per split of the scripted expert or a policy run here, from a chosen seed
/// base, ending with <c>success_seen: x</c> and <c>success_unseen: x</c> (fractions).
/// </summary>
internal static class SimEvaluateCommand
{
    /// <summary><c>sim evaluate</c>: the closed-loop evaluation of the scripted expert or a local policy.</summary>
    public static Command Create()
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
        var seedBase = new Option<int>("--seed-base")
        {
            Description = "Episode i of each split uses that split's seed base + this + i; 0 gives the development scenes, report on a base nobody tuned on",
            DefaultValueFactory = _ => SimSplits.DevelopmentSeedBase,
        };
        var oracle = new Option<bool>("--oracle-guides")
        {
            Description = "A point-guided policy acts on the simulator's labelled target and destination centres of the current world instead of System 2's points "
                + "(a diagnostic of what System 2's pointing costs, never for reported results)",
        };
        var command = new Command("evaluate", "Closed-loop evaluation: success rate per split with a 95% Wilson interval")
        {
            episodes, splits, envs, execute, ensemble, controller, checkpoint, inferenceSteps, json, seedBase, oracle, SimCommands.TasksOption, SimCommands.ImageSizeOption,
        };
        command.SetLocalAction(async (parse, cancellationToken) =>
        {
            var chosen = parse.GetValue(splits)!.Select(SimSplits.Named).ToArray();
            if (SimCommands.SeedRangeRefused(parse.GetValue(seedBase), parse.GetValue(episodes))) return ApiCommand.LocalError;
            var options = new EvaluationOptions(parse.GetValue(episodes), parse.GetValue(envs), parse.GetValue(execute),
                SimCommands.ParseTasks(parse.GetValue(SimCommands.TasksOption)!), SimEmbodiment.Create(parse.GetValue(SimCommands.ImageSizeOption)),
                SeedBase: parse.GetValue(seedBase));
            using var model = parse.GetValue(checkpoint) is { } path ? SimTrainCommands.LoadCheckpoint(path)
                : parse.GetValue(controller) == "policy" ? throw new ArgumentException("--controller policy needs --checkpoint") : null;
            var oracleGuides = parse.GetValue(oracle);
            if (oracleGuides && model?.Config.PointGuidance != true)
            {
                ApiCommand.Error(model is null ? "--oracle-guides is for a point-guided policy (--checkpoint); the expert needs no guides"
                    : "--oracle-guides replaces System 2's points in a point-guided policy, and this policy has no point guidance (it was not trained with --point-guidance)");
                return ApiCommand.LocalError;
            }
            var guides = SimProbeCommand.GuidesName(model?.Config.PointGuidance == true, oracleGuides);
            IActionController policy = model is null ? new ScriptedExpert() : new PolicyController(model, options.Robot(), parse.GetValue(inferenceSteps), oracleGuides: oracleGuides);
            if (parse.GetValue(ensemble) is > 0 and var horizon) policy = new TemporalEnsemble(policy, horizon);
            var results = new List<SplitResult>();
            await AnsiConsole.Progress().Columns(SimCommands.ProgressColumns()).StartAsync(async ctx =>
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
                    split = r.Split, guides, successes = r.Overall.Successes, episodes = r.Overall.Episodes, rate = r.Overall.Rate, low = r.Overall.Low, high = r.Overall.High,
                    by_task = r.ByTask.ToDictionary(kv => SimCommands.TaskName(kv.Key), kv => new { kv.Value.Successes, kv.Value.Episodes }), mean_steps = r.MeanSteps,
                    target_first = r.TargetFirst.Successes, other_first = r.OtherFirst.Successes, mean_progress = r.MeanProgress,
                }), new System.Text.Json.JsonSerializerOptions { WriteIndented = true }), cancellationToken);
            // Plain lines last (success_seen, then success_unseen), for scripts that read the final two lines.
            Console.Out.WriteLine($"guides: {guides}");
            Console.Out.WriteLine(EvaluationSummary.Of(results, options).ToText());
            return 0;
        });
        return command;
    }

    /// <summary>The final table: one row per split.</summary>
    internal static Table ResultTable(IReadOnlyList<SplitResult> results, IReadOnlyList<TaskKind> kinds)
    {
        var table = new Table().AddColumns("split", "episodes", "success", "95% interval");
        foreach (var kind in kinds) table.AddColumn(SimCommands.TaskName(kind));
        table.AddColumns("target first", "other first", "progress", "mean steps", "controller calls");
        foreach (var r in results)
        {
            var row = new List<string>
            {
                r.Split, SimCommands.Num(r.Overall.Episodes), SimCommands.Pct(r.Overall.Rate), $"[[{SimCommands.Pct(r.Overall.Low)}, {SimCommands.Pct(r.Overall.High)}]]",
            };
            row.AddRange(kinds.Select(k => r.ByTask.TryGetValue(k, out var s) ? $"{SimCommands.Pct(s.Rate)} ({s.Successes}/{s.Episodes})" : "-"));
            row.Add($"{SimCommands.Pct(r.TargetFirst.Rate)} ({r.TargetFirst.Successes})");
            row.Add($"{SimCommands.Pct(r.OtherFirst.Rate)} ({r.OtherFirst.Successes})");
            row.Add(SimCommands.Pct(r.MeanProgress));
            row.Add(r.MeanSteps.ToString("F1", CultureInfo.InvariantCulture));
            row.Add(SimCommands.Num(r.ControllerCalls));
            table.AddRow([.. row]);
        }
        return table;
    }

    private static SimEmbodiment Robot(this EvaluationOptions options) => options.Embodiment ?? SimEmbodiment.Tabletop;

    private static IReadOnlyList<TaskKind> TaskKinds(this EvaluationOptions options) =>
        options.Tasks is { Count: > 0 } tasks ? tasks : [TaskKind.PickPlace, TaskKind.Push];

}
