using System.Diagnostics;
using VlaCloud.Actions;
using VlaCloud.Datasets;
using VlaCloud.Sim;

namespace VlaCloud.Benchmarks;

/// <summary>Simulator throughput: physics steps, rendering, expert rollouts, evaluation and dataset writing.</summary>
internal sealed class SimSuite : IBenchmarkSuite
{
    public string Name => "sim";

    public string Description => "simulator step, render (64 and 224 px), evaluation and dataset-writing rates";

    public async Task RunAsync(Report report, string[] args, CancellationToken cancellationToken)
    {
        var scenes = Enumerable.Range(0, 200)
            .Select(i => SceneGenerator.ForEpisode(SimSplits.Train, i, SceneGenerator.KindOf(i, [TaskKind.PickPlace, TaskKind.Push])))
            .ToArray();

        // Physics + expert only: no rendering.
        var watch = Stopwatch.StartNew();
        long steps = 0;
        foreach (var scene in scenes)
        {
            var world = new TabletopWorld(scene);
            while (!world.IsSuccess && world.Step < SimEmbodiment.Tabletop.MaxEpisodeSteps)
            {
                world.Apply(ScriptedExpert.NextAction(world.Snapshot()));
                steps++;
            }
        }
        report.Add("step_expert_steps_per_s", steps / watch.Elapsed.TotalSeconds);
        report.Add("step_mean_episode_steps", (double)steps / scenes.Length);

        var states = scenes.Select(s => new TabletopWorld(s).Snapshot()).ToArray();
        foreach (var size in new[] { 64, 224 })
        {
            using var renderer = new Renderer(size);
            for (var i = 0; i < 20; i++) renderer.RenderMain(states[i]);
            var frames = size == 64 ? 4000 : 1000;
            watch.Restart();
            for (var i = 0; i < frames; i++) renderer.RenderMain(states[i % states.Length]);
            report.Add($"render_main_{size}px_frames_per_s", frames / watch.Elapsed.TotalSeconds);
            watch.Restart();
            for (var i = 0; i < frames; i++) renderer.RenderWrist(states[i % states.Length]);
            report.Add($"render_wrist_{size}px_frames_per_s", frames / watch.Elapsed.TotalSeconds);
        }

        using var pngRenderer = new Renderer(64);
        var rgb = pngRenderer.RenderMain(states[0]);
        watch.Restart();
        for (var i = 0; i < 2000; i++) RgbImage.EncodePng(rgb, 64, 64);
        report.Add("png_encode_64px_per_s", 2000 / watch.Elapsed.TotalSeconds);

        // Closed loop with images, as a model would be evaluated (the expert ignores them, the cost is the same).
        foreach (var envs in new[] { 1, 8 })
        {
            watch.Restart();
            var result = Evaluator.EvaluateSplit(new RenderingExpert(), SimSplits.Seen,
                new EvaluationOptions(EpisodesPerSplit: 64, ParallelEnvs: envs, ExecuteSteps: 1), cancellationToken: cancellationToken);
            var seconds = watch.Elapsed.TotalSeconds;
            report.Add($"eval_envs{envs}_env_steps_per_s", result.Overall.Episodes * result.MeanSteps / seconds);
            report.Add($"eval_envs{envs}_episodes_per_s", result.Overall.Episodes / seconds);
            report.Add($"eval_envs{envs}_expert_success", result.Overall.Rate);
        }

        var root = Path.Combine(Path.GetTempPath(), $"vlacloud-bench-sim-{Guid.NewGuid():N}");
        try
        {
            watch.Restart();
            var summary = await DatasetGenerator.GenerateAsync(root, new DatasetOptions(100, SimSplits.Train, [TaskKind.PickPlace, TaskKind.Push]),
                cancellationToken: cancellationToken);
            var seconds = watch.Elapsed.TotalSeconds;
            report.Add("dataset_100_episodes_seconds", seconds);
            report.Add("dataset_frames_per_s", summary.Frames / seconds);
            report.Add("dataset_frames", summary.Frames);
            report.Add("dataset_bytes", Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length));
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>The expert, asking for rendered images like a learned policy does.</summary>
    private sealed class RenderingExpert : IActionController
    {
        private readonly ScriptedExpert _expert = new();

        public bool NeedsImages => true;

        public IReadOnlyList<ActionChunk> Act(IReadOnlyList<SimObservation> batch) => _expert.Act(batch);
    }
}
