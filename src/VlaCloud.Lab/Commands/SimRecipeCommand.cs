using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using VlaCloud.Cli.Commands;
using VlaCloud.Policy;

namespace VlaCloud.Lab.Commands;

/// <summary>
/// Everything the simulator experiment is made of, written down: data sizes, the grounding base's question forms and
/// steps, the arms, their fine-tuning steps and seeds, and the two evaluation seed ranges. <c>sim recipe</c> runs it and
/// echoes it to <c>recipe.json</c>, so a table is rebuilt from the repository alone.
/// </summary>
/// <param name="Name">Names the recipe in every <c>metrics.json</c>; a change to any value here gets a new name.</param>
/// <param name="Scale">smoke (a test runs it end to end), reduced (what 2 shared cores allow) or full (the issue's protocol).</param>
/// <param name="Config">The built-in model config (<c>sim train --config</c>).</param>
/// <param name="Episodes">Expert demonstrations of the train split (the action data every arm shares).</param>
/// <param name="GroundingEpisodes">Episodes of the grounding split (all object kinds) for the spatial questions.</param>
/// <param name="BaseSteps">Steps of the grounding base from fresh weights: spatial questions only but the last step, which co-trains (the trainer wants at least one), as the older bases were built.</param>
/// <param name="BaseKinds">Question forms of the base (<see cref="SpatialPrompts.Question"/>).</param>
/// <param name="FineTuneSteps">Steps of every arm's fine-tune (arm 4 gets <see cref="BaseSteps"/> more, from fresh weights).</param>
/// <param name="FineTuneLearningRates">
/// Peak learning rates of every action run (arms 1, 2 and 4 and the demo; the base keeps the trainer's defaults). Above
/// the defaults because with these m1-tiny's action head reads its observation more within 2,000 steps (docs/experiments.md,
/// 2026-12-06, the learning-rate runs: 5.7 % of the action loss explained and rising, against 3.4 % with the defaults).
/// </param>
/// <param name="FineTuneKinds">Question forms co-trained in the st4vla arms.</param>
/// <param name="BatchSize">Action samples per step.</param>
/// <param name="SpatialRatio">Spatial samples per action sample in the st4vla arms.</param>
/// <param name="BaseSeed">Weights seed of the base.</param>
/// <param name="Seeds">Training seeds of every arm.</param>
/// <param name="DemoSteps">Steps of the demo (arm 2's recipe at seed <see cref="DemoSeed"/>, longer; never selected among runs).</param>
/// <param name="DemoSeed">The demo's training seed.</param>
/// <param name="DevSeedBase">Seed base of the development evaluation (look at it while building the recipe).</param>
/// <param name="DevEpisodes">Episodes per split of the development evaluation.</param>
/// <param name="ReportSeedBase">Seed base of the reported table: never evaluated before the final runs.</param>
/// <param name="ReportEpisodes">Episodes per split of the reported table.</param>
/// <param name="ExecuteSteps">Actions executed from each chunk before asking again.</param>
public sealed record SimRecipe(
    string Name, string Scale, string Config, int Episodes, int GroundingEpisodes,
    int BaseSteps, IReadOnlyList<string> BaseKinds, int FineTuneSteps, RecipeLearningRates FineTuneLearningRates, IReadOnlyList<string> FineTuneKinds, int BatchSize, double SpatialRatio,
    long BaseSeed, IReadOnlyList<long> Seeds, int DemoSteps, long DemoSeed,
    long DevSeedBase, int DevEpisodes, long ReportSeedBase, int ReportEpisodes, int ExecuteSteps)
{
    /// <summary>The recipe's version: its name's prefix in every scale.</summary>
    // v3: arm 3 (point guidance) runs on the M1 family.
    public const string Version = "sim-m1-recipe-v3";

    /// <summary>
    /// The fine-tunes' rates: run B of 2026-12-06 (20 demonstrations, 2,000 steps), the first setting under which the
    /// observation explained a growing share of the action loss.
    /// </summary>
    public static RecipeLearningRates FineTuneRates { get; } = new(Vlm: 1e-3, Expert: 2e-3, Rest: 2e-3);

    /// <summary>
    /// CPU seconds one training step of <c>m1-tiny</c> took at batch 8 (st4vla arm, 2 threads, the reduced run of
    /// 2026-12-05 in docs/experiments.md); only the dry run's estimate uses it.
    /// </summary>
    public const double SecondsPerStep = 0.7;

    /// <summary>CPU seconds one evaluation episode of <c>m1-tiny</c> took (same run).</summary>
    public const double SecondsPerEpisode = 0.6;

    /// <summary>The recipe at a scale.</summary>
    public static SimRecipe For(string scale) => scale switch
    {
        // The smoke scale keeps its 2-step runs: an end-to-end test runs it on a loaded 2-core CI machine.
        "smoke" => new(Version + "-smoke", scale, "m1-tiny", 2, 2, 2, ["point", "box", "trajectory"], 2, FineTuneRates, ["point", "box", "trajectory"], 2, 0.5,
            0, [0, 1, 2], 2, 0, 0, 1, 100_000, 1, 8),
        "reduced" => new(Version + "-reduced", scale, "m1-tiny", 100, 100, 300, ["point", "box", "trajectory"], 2000, FineTuneRates, ["point", "box", "trajectory"], 8, 0.5,
            0, [0, 1, 2], 2000, 0, 0, 10, 100_000, 30, 8),
        "full" => new(Version, scale, "m1-tiny", 200, 200, 3000, ["point", "box", "trajectory"], 3000, FineTuneRates, ["point", "box", "trajectory"], 8, 0.5,
            0, [0, 1, 2], 3000, 0, 0, 50, 100_000, 200, 8),
        _ => throw new ArgumentException($"unknown scale '{scale}'"),
    };

    /// <summary>
    /// Question forms co-trained in arm 3: <see cref="FineTuneKinds"/> and the point and placement questions, whose answers
    /// are the guide System 1 reads when acting (the base was not trained on placement). Everything else is arm 2's.
    /// </summary>
    public IReadOnlyList<string> PointGuidanceKinds => [.. FineTuneKinds.Union(["point", "placement"])];

    /// <summary>The scales <see cref="For"/> knows.</summary>
    public static IReadOnlyList<string> Scales { get; } = ["smoke", "reduced", "full"];
}

/// <summary>Peak learning rates of a run's three parameter groups (<c>sim train --vlm-lr --expert-lr --rest-lr</c>).</summary>
/// <param name="Vlm">System 2 (the VLM).</param>
/// <param name="Expert">The action expert (DiT).</param>
/// <param name="Rest">Everything else: the latent queries and the bridge.</param>
public sealed record RecipeLearningRates(double Vlm, double Expert, double Rest);

/// <summary>One arm of the recipe.</summary>
/// <param name="Id">Folder name and table key.</param>
/// <param name="Description">What it is.</param>
/// <param name="Runnable">False when the config's family cannot run it; <paramref name="Reason"/> says why.</param>
/// <param name="Reason">Why an arm is not run.</param>
public sealed record RecipeArm(string Id, string Description, bool Runnable, string? Reason = null);

/// <summary><c>vlacloud-lab sim recipe</c>: rebuild the base, the arms and the demo from <see cref="SimRecipe"/>.</summary>
internal static class SimRecipeCommand
{
    /// <summary>The four arms of issue 21.</summary>
    public static IReadOnlyList<RecipeArm> Arms { get; } =
    [
        new("arm1-vanilla-from-base", "vanilla fine-tune from the grounding base (the paper's comparison)", true),
        new("arm2-st4vla-latent", "st4vla: co-training + latent spatial prompt from the grounding base (the paper's mechanism)", true),
        new("arm3-st4vla-point-guidance", "st4vla + point guidance from the grounding base (VlaCloud's extension, not the paper): System 2's target and destination points as one more DiT condition token", true),
        new("arm4-vanilla-equal-compute", "vanilla from fresh weights with base + fine-tune steps", true),
    ];

    public static Command Create()
    {
        var scale = new Option<string>("--scale") { Description = "smoke (minutes), reduced (what 2 cores allow) or full (the issue's protocol)", DefaultValueFactory = _ => "smoke" };
        scale.AcceptOnlyFromAmong([.. SimRecipe.Scales]);
        var output = new Option<DirectoryInfo>("--out", "-o") { Description = "Folder of the recipe: data/, base/, one folder per arm and seed, demo/, recipe.json, results.json", Required = true };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the plan (commands and compute estimates) and write recipe.json without training" };
        var command = new Command("recipe", "Rebuild the grounding base, the four arms (3 seeds each) and the demo from the recipe in the code, then evaluate them on a development and a reporting seed range")
        {
            scale, output, dryRun,
        };
        command.SetLocalAction(async (parse, cancellationToken) =>
        {
            var recipe = SimRecipe.For(parse.GetValue(scale)!);
            var root = parse.GetValue(output)!.FullName;
            Directory.CreateDirectory(root);
            var commit = GitCommit();
            var plan = Plan(recipe, root);
            await File.WriteAllTextAsync(Path.Combine(root, "recipe.json"), JsonSerializer.Serialize(new
            {
                recipe, commit, arms = Arms,
                questions = recipe.BaseKinds.Union(recipe.FineTuneKinds).Union(recipe.PointGuidanceKinds).ToDictionary(k => k, k => SpatialPrompts.Question(Enum.Parse<SpatialKind>(k, ignoreCase: true), "{instruction}")),
                action_prompt = SpatialPrompts.ForAction("{instruction}"),
                steps = plan.Select(p => new { p.Name, args = p.Args, p.TrainSteps, p.EvalEpisodes, estimated_cpu_seconds = p.Estimate }),
            }, Json), cancellationToken);
            foreach (var step in plan)
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{step.Name,-40} ~{step.Estimate / 60:F1} CPU min  vlacloud-lab {string.Join(' ', step.Args)}"));
            foreach (var arm in Arms.Where(a => !a.Runnable)) Console.Out.WriteLine($"{arm.Id,-40} not run: {arm.Reason}");
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"total: {plan.Sum(p => p.TrainSteps)} training steps, {plan.Sum(p => p.EvalEpisodes)} evaluation episodes, ~{plan.Sum(p => p.Estimate) / 3600:F1} CPU hours (m1-tiny at {SimRecipe.SecondsPerStep} s/step, {SimRecipe.SecondsPerEpisode} s/episode)"));
            if (parse.GetValue(dryRun)) return 0;

            var cpu = new Dictionary<string, double>();
            foreach (var step in plan)
            {
                var (code, seconds) = await RunAsync(step.Args, cancellationToken);
                cpu[step.Name] = seconds;
                if (code != 0)
                {
                    ApiCommand.Error($"{step.Name} failed with exit code {code}: vlacloud-lab {string.Join(' ', step.Args)}");
                    return 1;
                }
            }
            var results = Results(recipe, root, cpu);
            await File.WriteAllTextAsync(Path.Combine(root, "results.json"), results.ToJsonString(new JsonSerializerOptions { WriteIndented = true }), cancellationToken);
            await File.WriteAllTextAsync(Path.Combine(root, "demo", "metrics.json"), new JsonObject
            {
                ["recipe"] = recipe.Name, ["commit"] = commit, ["config"] = recipe.Config, ["steps"] = recipe.DemoSteps, ["seed"] = recipe.DemoSeed,
                ["cpu_seconds"] = cpu.GetValueOrDefault("demo"),
                ["development"] = Evaluation(Path.Combine(root, "demo", "eval-dev.json")),
                ["reporting"] = Evaluation(Path.Combine(root, "demo", "eval-report.json")),
            }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }), cancellationToken);
            foreach (var arm in results["arms"]!.AsObject())
                Console.Out.WriteLine($"{arm.Key,-40} {arm.Value!["reporting"]!.ToJsonString()}");
            return 0;
        });
        return command;
    }

    /// <summary>One process of the plan.</summary>
    private sealed record PlanStep(string Name, string[] Args, int TrainSteps, int EvalEpisodes, double Estimate);

    private static List<PlanStep> Plan(SimRecipe r, string root)
    {
        string In(params string[] parts) => Path.Combine([root, .. parts]);
        var data = new[] { "--data", In("data", "train"), "--episodes", I(r.Episodes), "--grounding", In("data", "grounding"), "--grounding-episodes", I(r.GroundingEpisodes) };
        var common = new[] { "--batch-size", I(r.BatchSize), "--spatial-ratio", D(r.SpatialRatio) };
        var rates = new[] { "--vlm-lr", D(r.FineTuneLearningRates.Vlm), "--expert-lr", D(r.FineTuneLearningRates.Expert), "--rest-lr", D(r.FineTuneLearningRates.Rest) };
        var steps = new List<PlanStep>();
        void Train(string name, int trainSteps, params string[] args) =>
            steps.Add(new(name, ["sim", "train", .. args, .. data, .. common, "--steps", I(trainSteps), "-o", In(name)], trainSteps, 0, trainSteps * SimRecipe.SecondsPerStep));
        void Evaluate(string name)
        {
            foreach (var (label, seedBase, episodes) in new[] { ("dev", r.DevSeedBase, r.DevEpisodes), ("report", r.ReportSeedBase, r.ReportEpisodes) })
                steps.Add(new($"{name}/eval-{label}", ["sim", "evaluate", "--checkpoint", In(name), "-n", I(episodes), "--seed-base", L(seedBase), "--splits", "seen", "unseen",
                    "--execute-steps", I(r.ExecuteSteps), "--json", In(name, $"eval-{label}.json")], 0, 2 * episodes, 2 * episodes * SimRecipe.SecondsPerEpisode));
        }
        Train("base", r.BaseSteps, ["--config", r.Config, "--mode", "st4vla", "--seed", L(r.BaseSeed), "--spatial-pretrain-steps", I(r.BaseSteps - 1), "--spatial-kinds", .. r.BaseKinds]);
        foreach (var seed in r.Seeds)
        {
            Train($"arm1-vanilla-from-base/seed-{seed}", r.FineTuneSteps, ["--init", In("base"), "--mode", "vanilla", "--seed", L(seed), .. rates]);
            Evaluate($"arm1-vanilla-from-base/seed-{seed}");
            Train($"arm2-st4vla-latent/seed-{seed}", r.FineTuneSteps, ["--init", In("base"), "--mode", "st4vla", "--seed", L(seed), .. rates, "--spatial-kinds", .. r.FineTuneKinds]);
            Evaluate($"arm2-st4vla-latent/seed-{seed}");
            Train($"arm3-st4vla-point-guidance/seed-{seed}", r.FineTuneSteps,
                ["--init", In("base"), "--mode", "st4vla", "--point-guidance", "--seed", L(seed), .. rates, "--spatial-kinds", .. r.PointGuidanceKinds]);
            Evaluate($"arm3-st4vla-point-guidance/seed-{seed}");
            Train($"arm4-vanilla-equal-compute/seed-{seed}", r.BaseSteps + r.FineTuneSteps, ["--config", r.Config, "--mode", "vanilla", "--seed", L(seed), .. rates]);
            Evaluate($"arm4-vanilla-equal-compute/seed-{seed}");
        }
        Train("demo", r.DemoSteps, ["--init", In("base"), "--mode", "st4vla", "--seed", L(r.DemoSeed), .. rates, "--spatial-kinds", .. r.FineTuneKinds]);
        Evaluate("demo");
        return steps;
    }

    /// <summary>Per arm: each seed's success per split and range, and the pooled rate with its 95 % Wilson interval.</summary>
    private static JsonObject Results(SimRecipe r, string root, IReadOnlyDictionary<string, double> cpu)
    {
        var arms = new JsonObject();
        foreach (var arm in Arms.Where(a => a.Runnable))
        {
            var entry = new JsonObject { ["description"] = arm.Description };
            foreach (var label in new[] { "dev", "report" })
            {
                var pooled = new Dictionary<string, (int Successes, int Episodes, List<double> Rates)>();
                foreach (var seed in r.Seeds)
                    foreach (var split in Evaluation(Path.Combine(root, arm.Id, $"seed-{seed}", $"eval-{label}.json")).AsObject())
                    {
                        var (s, n, rates) = pooled.GetValueOrDefault(split.Key, (0, 0, new List<double>()));
                        var (ss, nn) = ((int)split.Value!["successes"]!, (int)split.Value["episodes"]!);
                        rates.Add(nn == 0 ? 0 : (double)ss / nn);
                        pooled[split.Key] = (s + ss, n + nn, rates);
                    }
                entry[label == "dev" ? "development" : "reporting"] = new JsonObject(pooled.Select(p =>
                {
                    var (low, high) = Wilson(p.Value.Successes, p.Value.Episodes);
                    return KeyValuePair.Create<string, JsonNode?>(p.Key, new JsonObject
                    {
                        ["successes"] = p.Value.Successes, ["episodes"] = p.Value.Episodes, ["mean_over_seeds"] = p.Value.Rates.Average(),
                        ["per_seed"] = new JsonArray([.. p.Value.Rates.Select(x => (JsonNode)x)]), ["low"] = low, ["high"] = high,
                    });
                }));
            }
            entry["cpu_seconds"] = new JsonObject(cpu.Where(c => c.Key.StartsWith(arm.Id + "/", StringComparison.Ordinal))
                .Select(c => KeyValuePair.Create<string, JsonNode?>(c.Key[(arm.Id.Length + 1)..], c.Value)));
            arms[arm.Id] = entry;
        }
        return new JsonObject { ["recipe"] = r.Name, ["commit"] = GitCommit(), ["base_cpu_seconds"] = cpu.GetValueOrDefault("base"), ["arms"] = arms };
    }

    /// <summary>A <c>sim evaluate --json</c> file as split → {successes, episodes, rate, low, high}.</summary>
    private static JsonObject Evaluation(string path)
    {
        var result = new JsonObject();
        foreach (var split in JsonNode.Parse(File.ReadAllText(path))!.AsArray())
            result[(string)split!["split"]!] = new JsonObject
            {
                ["successes"] = (int)split["successes"]!, ["episodes"] = (int)split["episodes"]!, ["rate"] = (double)split["rate"]!,
                ["low"] = (double)split["low"]!, ["high"] = (double)split["high"]!,
            };
        return result;
    }

    private static (double Low, double High) Wilson(int successes, int n)
    {
        if (n == 0) return (0, 1);
        const double z = 1.96;
        var p = (double)successes / n;
        var centre = (p + z * z / (2 * n)) / (1 + z * z / n);
        var half = z * Math.Sqrt(p * (1 - p) / n + z * z / (4.0 * n * n)) / (1 + z * z / n);
        return (Math.Max(0, centre - half), Math.Min(1, centre + half));
    }

    /// <summary>Runs this tool again with <paramref name="args"/> (its output straight through); returns the exit code and the child's CPU seconds.</summary>
    private static async Task<(int Code, double CpuSeconds)> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var host = Environment.ProcessPath ?? "dotnet";
        var viaDotnet = Path.GetFileNameWithoutExtension(host).Equals("dotnet", StringComparison.OrdinalIgnoreCase);
        var start = new ProcessStartInfo(host) { UseShellExecute = false };
        if (viaDotnet) start.ArgumentList.Add(typeof(SimRecipeCommand).Assembly.Location);
        foreach (var a in args) start.ArgumentList.Add(a);
        Console.Out.WriteLine($"$ vlacloud-lab {string.Join(' ', args)}");
        Console.Out.Flush();
        var before = ChildrenCpuSeconds();
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start vlacloud-lab");
        try { await process.WaitForExitAsync(cancellationToken); }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        // An exited child's times are gone from Process; the kernel adds them to this process's reaped-children total.
        return (process.ExitCode, ChildrenCpuSeconds() - before);
    }

    /// <summary>User + system CPU seconds of this process's waited-for children (Linux/macOS <c>getrusage</c>; 0 elsewhere).</summary>
    private static double ChildrenCpuSeconds()
    {
        if (OperatingSystem.IsWindows()) return 0;
        var usage = new long[18];
        return GetRUsage(-1, usage) == 0 ? usage[0] + usage[1] / 1e6 + usage[2] + usage[3] / 1e6 : 0;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "getrusage")]
    private static extern int GetRUsage(int who, [System.Runtime.InteropServices.Out] long[] usage);

    /// <summary>The commit of the checkout the tool runs from (HEAD, with <c>-dirty</c> for uncommitted changes), or <c>unknown</c>.</summary>
    private static string GitCommit()
    {
        try
        {
            string Git(params string[] args)
            {
                var start = new ProcessStartInfo("git") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = AppContext.BaseDirectory };
                foreach (var a in args) start.ArgumentList.Add(a);
                using var git = Process.Start(start)!;
                var text = git.StandardOutput.ReadToEnd().Trim();
                git.WaitForExit();
                return git.ExitCode == 0 ? text : throw new InvalidOperationException(text);
            }
            var head = Git("rev-parse", "HEAD");
            return Git("status", "--porcelain", "--untracked-files=no").Length > 0 ? head + "-dirty" : head;
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return "unknown";
        }
    }

    private static string I(int value) => value.ToString(CultureInfo.InvariantCulture);
    private static string L(long value) => value.ToString(CultureInfo.InvariantCulture);
    private static string D(double value) => value.ToString(CultureInfo.InvariantCulture);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}
