using System.Formats.Tar;
using System.Threading.Channels;
using VlaCloud.Telemetry;

namespace VlaCloud.Training.Jobs;

/// <summary>
/// Receives each step's metrics on the training thread: queues them as events, and when the step before was a
/// save point, packs that training state (its folder is complete by then) for the uploader.
/// </summary>
internal sealed class TrainingReporter(
    JobEventSink sink, string states, string work, int interval, int resumeStep,
    ChannelWriter<(int Step, string Tar, TrainingProgress Metrics)> uploads) : IProgress<TrainingProgress>
{
    private TrainingProgress? previous;

    public void Report(TrainingProgress value)
    {
        VlaCloudTelemetry.TrainingSteps.Add(1); // as it happens, so the counter is live
        // Described (text, JSON) by the sink's writer, not here on the training thread.
        sink.Metrics(value.Step, () => ($"Step {value.Step}/{value.TotalSteps}: loss {value.Loss:G4}", new
        {
            step = value.Step, total_steps = value.TotalSteps, loss = value.Loss, action_loss = value.ActionLoss, spatial_loss = value.SpatialLoss,
            learning_rate = value.ExpertLearningRate, vlm_learning_rate = value.VlmLearningRate, gradient_norm = value.GradientNorm,
            spatial_samples = value.SpatialSamples, steps_per_second = value.StepsPerSecond,
        }));
        // CoTrainer saves after reporting a step, so the state of step s - 1 is complete when step s is reported.
        var saved = value.Step - 1;
        if (interval > 0 && saved > resumeStep && saved % interval == 0 && previous is not null)
        {
            var folder = Path.Combine(states, $"step-{saved:D8}");
            if (Directory.Exists(folder))
            {
                var tar = Path.Combine(work, $"state-{saved:D8}.tar");
                TarFile.CreateFromDirectory(folder, tar, includeBaseDirectory: false);
                uploads.TryWrite((saved, tar, previous));
            }
        }
        previous = value;
    }

    public static string MetricsJson(TrainingProgress p) => System.Text.Json.JsonSerializer.Serialize(new
    {
        step = p.Step, loss = p.Loss, action_loss = p.ActionLoss, spatial_loss = p.SpatialLoss, learning_rate = p.ExpertLearningRate,
    });
}
