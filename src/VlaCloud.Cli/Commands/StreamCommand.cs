using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Spectre.Console;
using VlaCloud.Client;
using VlaCloud.Contracts;
using VlaCloud.Sim;

namespace VlaCloud.Cli.Commands;

/// <summary>
/// <c>vlacloud stream --checkpoint REF --sim</c>: a closed-loop demo over <c>/v1/stream</c>. The built-in simulator
/// renders each observation locally, the server answers with an action chunk, the simulator executes it; at the end
/// the achieved control rate, the round-trip latency (p50/p99) and the success rate are shown.
/// </summary>
internal static class StreamCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint", "-c") { Description = "Checkpoint for the simulator's embodiment: id, model@vN or model@alias", Required = true };
        var sim = new Option<bool>("--sim") { Description = "Drive the built-in tabletop simulator (the only source of observations so far)" };
        var episodes = new Option<int>("--episodes", "-n") { Description = "Episodes to run", DefaultValueFactory = _ => 3 };
        var split = new Option<string>("--split") { Description = "Simulator split the scenes come from", DefaultValueFactory = _ => "seen" };
        var tasks = new Option<string>("--tasks") { Description = "pick_place, push, or both (alternated by episode)", DefaultValueFactory = _ => "both" };
        tasks.AcceptOnlyFromAmong("pick_place", "push", "both");
        var execute = new Option<int?>("--execute") { Description = "Actions of each chunk executed before the next observation (default: the whole chunk)" };
        var encoding = new Option<string>("--encoding") { Description = "json or msgpack frames", DefaultValueFactory = _ => "msgpack" };
        encoding.AcceptOnlyFromAmong("json", "msgpack");
        var steps = new Option<int?>("--steps") { Description = "Denoising steps (default: the checkpoint's)" };
        var realtime = new Option<bool>("--realtime") { Description = "Pace the robot at the embodiment's control rate instead of as fast as the loop allows" };
        var embodiment = new Option<string?>("--embodiment") { Description = "Embodiment, when the model exists for several" };
        var command = new Command("stream", "Run a closed-loop WebSocket session; with --sim, against the built-in simulator, showing control rate, latency and success")
        {
            checkpoint, sim, episodes, split, tasks, execute, encoding, steps, realtime, embodiment,
        };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            if (!api.Get(sim)) throw new CliException("Only simulator sessions are built in: add --sim.");
            var kinds = api.Get(tasks) switch { "pick_place" => new[] { TaskKind.PickPlace }, "push" => [TaskKind.Push], _ => [TaskKind.PickPlace, TaskKind.Push] };
            SimSplit simSplit;
            try
            {
                simSplit = SimSplits.Named(api.Get(split)!);
            }
            catch (ArgumentException e)
            {
                throw new CliException(e.Message);
            }
            await using var session = await api.Client.ConnectStreamAsync(new StreamOptions(api.Get(checkpoint)!, api.Get(embodiment), api.Get(encoding)!), cancellationToken);
            var robot = CheckSimulator(session.Info);
            var run = new SimRun(session, robot, simSplit, kinds, api.Get(execute) ?? robot.ChunkLength, api.Get(steps), api.Get(realtime));
            var info = session.Info;
            if (!api.Json)
                AnsiConsole.MarkupLine($"Session {info.SessionId[..8]} on [bold]{Markup.Escape(info.Checkpoint.Model)}@v{info.Checkpoint.Version}[/] " +
                                       $"({Markup.Escape(info.Embodiment.Name)}, {info.Encoding}, {robot.ControlHz:0.#} Hz nominal, chunks of {robot.ChunkLength})");
            var outcomes = new List<EpisodeOutcome>();
            if (api.Json)
                for (var i = 0; i < api.Get(episodes); i++) outcomes.Add(await run.EpisodeAsync(i, cancellationToken));
            else
                await AnsiConsole.Progress().Columns([new TaskDescriptionColumn(), new ProgressBarColumn(), new ElapsedTimeColumn()]).StartAsync(async ctx =>
                {
                    for (var i = 0; i < api.Get(episodes); i++)
                    {
                        var bar = ctx.AddTask($"episode {i + 1}", maxValue: robot.MaxEpisodeSteps);
                        var outcome = await run.EpisodeAsync(i, cancellationToken, (step, hz) =>
                        {
                            bar.Value = step;
                            bar.Description = string.Create(CultureInfo.InvariantCulture, $"episode {i + 1} · step {step} · {hz:0.0} Hz");
                        });
                        bar.Description = $"episode {i + 1} · {Markup.Escape(outcome.Instruction)} · {(outcome.Success ? "[green]success[/]" : "[red]failed[/]")}";
                        bar.Value = bar.MaxValue;
                        outcomes.Add(outcome);
                    }
                });
            await session.CloseAsync(cancellationToken);
            Report(api, run, outcomes);
            return 0;
        });
        return command;
    }

    /// <summary>The simulator robot matching the session's embodiment; a readable error when they differ.</summary>
    private static SimEmbodiment CheckSimulator(StreamSessionInfo info)
    {
        var e = info.Embodiment;
        var size = e.Cameras.FirstOrDefault()?.Width ?? 64;
        var robot = SimEmbodiment.Create(size);
        var fits = e.ActionDim == robot.ActionDim && e.StateDim == robot.StateDim
                   && e.Cameras.Select(c => (c.Name, c.Width, c.Height)).SequenceEqual(robot.Cameras.Select(c => (c.Name, c.Width, c.Height)));
        if (!fits)
            throw new CliException($"The checkpoint's embodiment '{e.Name}' does not match the simulator: it needs {robot.ActionDim} actions, {robot.StateDim} state values " +
                                   $"and cameras {string.Join(", ", robot.Cameras.Select(c => $"{c.Name} {c.Width}x{c.Height}"))} " +
                                   "(create one with: vlacloud embodiments create NAME --sim).");
        return robot with { ControlHz = e.ControlHz, ChunkLength = e.ChunkLength };
    }

    private static void Report(ApiContext api, SimRun run, List<EpisodeOutcome> outcomes)
    {
        var latencies = run.Latencies.Order().ToArray();
        var totalSteps = outcomes.Sum(o => o.Steps);
        var seconds = outcomes.Sum(o => o.Elapsed.TotalSeconds);
        var hz = seconds > 0 ? totalSteps / seconds : 0;
        var successes = outcomes.Count(o => o.Success);
        if (api.Json)
        {
            ApiContext.WriteJson(new
            {
                episodes = outcomes.Count, successes, success_rate = outcomes.Count == 0 ? 0 : (double)successes / outcomes.Count,
                steps = totalSteps, requests = latencies.Length, control_hz = hz,
                latency_p50_ms = Percentile(latencies, 0.50), latency_p99_ms = Percentile(latencies, 0.99),
                server_compute_p50_ms = Percentile([.. run.ComputeMs.Order()], 0.50),
                outcomes = outcomes.Select(o => new { instruction = o.Instruction, success = o.Success, steps = o.Steps }),
            });
            return;
        }
        var table = new Table().AddColumns("episode", "task", "steps", "result");
        for (var i = 0; i < outcomes.Count; i++)
            table.AddRow((i + 1).ToString(CultureInfo.InvariantCulture), Markup.Escape(outcomes[i].Instruction), outcomes[i].Steps.ToString(CultureInfo.InvariantCulture),
                outcomes[i].Success ? "[green]success[/]" : "[red]failed[/]");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
            $"control rate [bold]{hz:0.0} Hz[/] achieved ({totalSteps} steps, {latencies.Length} requests) · latency p50 [bold]{Percentile(latencies, 0.5):0.0} ms[/], " +
            $"p99 [bold]{Percentile(latencies, 0.99):0.0} ms[/] · success [bold]{successes}/{outcomes.Count}[/] ({(outcomes.Count == 0 ? 0 : 100.0 * successes / outcomes.Count):0}%)"));
    }

    /// <summary>Nearest-rank percentile of sorted values; 0 for none.</summary>
    internal static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    private sealed record EpisodeOutcome(string Instruction, bool Success, int Steps, TimeSpan Elapsed);

    /// <summary>Episodes of one session: render, send, execute the chunk, until success or the step limit.</summary>
    private sealed class SimRun(StreamSession session, SimEmbodiment robot, SimSplit split, TaskKind[] kinds, int execute, int? steps, bool realtime)
    {
        public List<double> Latencies { get; } = [];
        public List<double> ComputeMs { get; } = [];

        public async Task<EpisodeOutcome> EpisodeAsync(int episode, CancellationToken cancellationToken, Action<int, double>? progress = null)
        {
            var scene = SceneGenerator.ForEpisode(split, episode, SceneGenerator.KindOf(episode, kinds));
            var world = new TabletopWorld(scene);
            using var renderer = new Renderer(robot.Cameras[0].Width);
            await session.ResetAsync(cancellationToken);
            var period = TimeSpan.FromSeconds(1 / robot.ControlHz);
            var started = Stopwatch.GetTimestamp();
            while (!world.IsSuccess && world.Step < robot.MaxEpisodeSteps)
            {
                var images = renderer.RenderAll(world.Snapshot(), robot);
                var observation = new ObservationInput(
                    robot.Cameras.ToDictionary(c => c.Name, c => new ImageInput("raw", images[c.Name], [c.Height, c.Width, 3])),
                    world.State(), scene.Task.Instruction);
                var asked = Stopwatch.GetTimestamp();
                var reply = await session.ActAsync(observation, new ActOptions(Steps: steps, Seed: episode * 1000L + world.Step), cancellationToken);
                Latencies.Add(Stopwatch.GetElapsedTime(asked).TotalMilliseconds);
                var chunk = reply switch
                {
                    StreamActions actions => actions.Actions,
                    StreamAction single => [single.Action],
                    _ => [],
                };
                if (reply is StreamActions { Timing: var timing }) ComputeMs.Add(timing.ComputeMs);
                foreach (var action in chunk.Take(Math.Max(1, execute)))
                {
                    world.Apply(action);
                    if (realtime)
                    {
                        var due = started + (long)(world.Step * period.TotalSeconds * Stopwatch.Frequency);
                        var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
                        if (wait > TimeSpan.Zero) await Task.Delay(wait, cancellationToken);
                    }
                    if (world.IsSuccess || world.Step >= robot.MaxEpisodeSteps) break;
                }
                var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
                progress?.Invoke(world.Step, elapsed > 0 ? world.Step / elapsed : 0);
            }
            return new EpisodeOutcome(scene.Task.Instruction, world.IsSuccess, world.Step, Stopwatch.GetElapsedTime(started));
        }
    }
}
