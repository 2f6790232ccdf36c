using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Spectre.Console;
using VlaCloud.Client;
using VlaCloud.Contracts;

namespace VlaCloud.Cli.Commands;

/// <summary><c>vlacloud jobs create|list|show|cancel|follow|loss-curve</c>: fine-tuning jobs.</summary>
internal static class JobsCommands
{
    private static readonly Argument<Guid> JobId = new("id") { Description = "Fine-tuning job id" };

    public static Command Create() => new("jobs", "Fine-tuning jobs: create, list, show, cancel, follow live, loss curve")
    {
        CreateOne(), List(), Show(), Cancel(), Follow(), LossCurve(),
    };

    private static Command CreateOne()
    {
        var dataset = new Option<Guid>("--dataset") { Description = "A ready dataset's id", Required = true };
        var baseReference = new Option<string>("--base") { Description = "Checkpoint to start from: an id, model@vN or model@alias", Required = true };
        var model = new Option<string?>("--model") { Description = "Result model (default: the base's model); the result is its next version" };
        var steps = new Option<int?>("--steps") { Description = "Optimizer steps (default 100)" };
        var batch = new Option<int?>("--batch-size") { Description = "Action samples per step" };
        var learningRate = new Option<double?>("--learning-rate") { Description = "Peak learning rate of the action expert" };
        var warmup = new Option<int?>("--warmup-steps") { Description = "Linear warm-up steps" };
        var ratio = new Option<double?>("--spatial-ratio") { Description = "Spatial samples per action sample (st4vla)" };
        var decay = new Option<double?>("--gradient-decay") { Description = "Factor on the action gradient into the VLM" };
        var interval = new Option<int?>("--checkpoint-interval") { Description = "Steps between resumable training states" };
        var mode = new Option<string?>("--mode") { Description = "st4vla (spatial co-training, the default) or vanilla (action loss only)" };
        mode.AcceptOnlyFromAmong("st4vla", "vanilla");
        var seed = new Option<long?>("--seed") { Description = "Seed of data order and noise" };
        var evaluate = new Option<bool>("--evaluate") { Description = "Evaluate the result in the built-in simulator (simulator embodiments)" };
        var promoteTo = new Option<string?>("--promote-to") { Description = "Alias to move to the result when it beats the alias's current holder, e.g. production" };
        var follow = new Option<bool>("--follow") { Description = "Then stream the job's events until it ends (as jobs follow)" };
        var command = new Command("create", "Fine-tune a base checkpoint on a ready dataset into the next version of a model")
        {
            dataset, baseReference, model, steps, batch, learningRate, warmup, ratio, decay, interval, mode, seed, evaluate, promoteTo, follow,
        };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            var reference = api.Get(baseReference)!;
            var hyperparameters = new FineTuningHyperparameters
            {
                Steps = api.Get(steps), BatchSize = api.Get(batch), LearningRate = api.Get(learningRate), WarmupSteps = api.Get(warmup),
                SpatialRatio = api.Get(ratio), GradientDecay = api.Get(decay), CheckpointInterval = api.Get(interval), Mode = api.Get(mode), Seed = api.Get(seed),
            };
            var job = await api.Client.CreateFineTuningJobAsync(new CreateFineTuningJobRequest(
                reference, api.Get(dataset), api.Get(model) ?? await BaseModelAsync(api, reference, cancellationToken), hyperparameters,
                api.Get(evaluate), api.Get(promoteTo)), cancellationToken);
            if (api.Get(follow)) return await FollowAsync(api, job.Id, null, cancellationToken);
            if (api.Json) ApiContext.WriteJson(job);
            else AnsiConsole.MarkupLine($"Created job [bold]{job.Id}[/] ({Markup.Escape(job.Model)}, {job.TotalSteps} steps), {DatasetsCommands.StatusMarkup(job.Status)}. " +
                                        $"Follow it with: vlacloud jobs follow {job.Id}");
            return 0;
        });
        return command;
    }

    /// <summary>The model a base reference names: the part before '@', or the model of the checkpoint an id names.</summary>
    private static async Task<string> BaseModelAsync(ApiContext api, string reference, CancellationToken cancellationToken)
    {
        if (Guid.TryParse(reference, out var id)) return (await api.Client.GetCheckpointAsync(id, cancellationToken)).Model;
        var at = reference.IndexOf('@');
        return at > 0 ? reference[..at] : throw new CliException($"--base '{reference}' is not a checkpoint id, model@vN or model@alias; or pass --model.");
    }

    private static Command List()
    {
        var limit = new Option<int>("--limit") { Description = "Most jobs to show (newest first)", DefaultValueFactory = _ => 20 };
        var command = new Command("list", "List your fine-tuning jobs, newest first") { limit };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            if (api.Json)
            {
                await api.WriteApiPageAsync("v1/fine_tuning/jobs", cancellationToken, ("limit", Math.Clamp(api.Get(limit), 1, VlaCloudClient.ApiPageLimit)));
                return 0;
            }
            var rows = new List<FineTuningJobResponse>();
            await foreach (var j in api.Client.ListAllFineTuningJobsAsync(cancellationToken))
            {
                rows.Add(j);
                if (rows.Count >= api.Get(limit)) break;
            }

            var table = new Table().AddColumns("model", "status", "steps", "loss", "created", "result", "id");
            foreach (var j in rows)
                table.AddRow(Markup.Escape(j.Model), DatasetsCommands.StatusMarkup(j.Status), $"{j.Step}/{j.TotalSteps}", Loss(j.Metrics) ?? "-",
                    j.CreatedAt.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture), j.ResultCheckpointId?.ToString() ?? "-", j.Id.ToString());
            AnsiConsole.Write(table);
            return 0;
        });
        return command;
    }

    private static Command Show()
    {
        var command = new Command("show", "Show a job: status, progress, hyperparameters, metrics, result") { JobId };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            var job = await api.Client.GetFineTuningJobAsync(api.Get(JobId), cancellationToken);
            if (api.Json) ApiContext.WriteJson(job);
            else Describe(job);
            return 0;
        });
        return command;
    }

    private static Command Cancel()
    {
        var command = new Command("cancel", "Cancel a queued or running job (a running one stops within seconds and registers nothing)") { JobId };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            var job = await api.Client.CancelFineTuningJobAsync(api.Get(JobId), cancellationToken);
            if (api.Json) ApiContext.WriteJson(job);
            else AnsiConsole.MarkupLine(job.Status == "cancelled"
                ? $"Job [bold]{job.Id}[/] is {DatasetsCommands.StatusMarkup(job.Status)}."
                : $"Cancellation of job [bold]{job.Id}[/] requested; its trainer stops it within seconds (vlacloud jobs follow {job.Id}).");
            return 0;
        });
        return command;
    }

    private static Command Follow()
    {
        var after = new Option<long?>("--after") { Description = "Start after this event number (default: from the first event)" };
        var command = new Command("follow", "Stream a job's events live until it ends; exits 4 when it failed or was cancelled") { JobId, after };
        command.SetApiAction((api, cancellationToken) => FollowAsync(api, api.Get(JobId), api.Get(after), cancellationToken));
        return command;
    }

    /// <summary>Prints the job's events as they arrive, then its final state; the exit code says whether it succeeded.</summary>
    private static async Task<int> FollowAsync(ApiContext api, Guid id, long? after, CancellationToken cancellationToken)
    {
        if (!api.Json && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive)
            await FollowWithProgressAsync(api, id, after, cancellationToken);
        else
            await FollowLinesAsync(api, id, after, cancellationToken);
        var job = await api.Client.GetFineTuningJobAsync(id, cancellationToken);
        if (api.Json) ApiContext.WriteJsonLine(job);
        else
        {
            var result = job.ResultCheckpointId is { } checkpoint ? $": result {checkpoint}" : "";
            var why = job.Error is { } error ? $": {error}" : "";
            AnsiConsole.MarkupLine($"Job [bold]{job.Id}[/] {DatasetsCommands.StatusMarkup(job.Status)}{Markup.Escape(result + why)}" +
                                   (job.Promoted == true ? $" (promoted to {Markup.Escape(job.Model)}@{Markup.Escape(job.PromoteTo ?? "")})" : ""));
        }
        return job.Status == "succeeded" ? 0 : ApiCommand.Unsuccessful;
    }

    /// <summary>
    /// On a terminal: one live progress bar (steps, percentage, time left) whose label carries the smoothed loss and the
    /// latest message, instead of a line per step. Piped output keeps one line per event.
    /// </summary>
    private static async Task FollowWithProgressAsync(ApiContext api, Guid id, long? after, CancellationToken cancellationToken)
    {
        var job = await api.Client.GetFineTuningJobAsync(id, cancellationToken);
        await AnsiConsole.Progress().AutoClear(false).HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var bar = ctx.AddTask($"job {id.ToString()[..8]}", maxValue: Math.Max(1, job.TotalSteps));
                bar.Value = job.Step;
                double? smoothed = null;
                var message = "";
                await foreach (var e in api.Client.StreamFineTuningJobEventsAsync(id, after, cancellationToken))
                {
                    if (e.Type == "metrics" && e.Data.ValueKind == System.Text.Json.JsonValueKind.Object
                        && e.Data.TryGetProperty("step", out var step) && step.TryGetInt32(out var n))
                    {
                        if (e.Data.TryGetProperty("total_steps", out var total) && total.TryGetInt32(out var t) && t > 0) bar.MaxValue = t;
                        bar.Value = n;
                        // The same moving average as the console's curve: a readable trend instead of per-step noise.
                        if (e.Data.TryGetProperty("loss", out var loss) && loss.ValueKind == System.Text.Json.JsonValueKind.Number)
                            smoothed = smoothed is { } previous ? 0.9 * previous + 0.1 * loss.GetDouble() : loss.GetDouble();
                    }
                    else
                    {
                        message = e.Message.Length > 60 ? e.Message[..60] + "…" : e.Message;
                    }
                    bar.Description = Markup.Escape($"job {id.ToString()[..8]} step {bar.Value:0}/{bar.MaxValue:0}" +
                                                    (smoothed is { } l ? $" loss {l:G4}" : "") + (message.Length > 0 ? $" · {message}" : ""));
                }
                bar.StopTask();
            });
    }

    private static async Task FollowLinesAsync(ApiContext api, Guid id, long? after, CancellationToken cancellationToken)
    {
        await foreach (var e in api.Client.StreamFineTuningJobEventsAsync(id, after, cancellationToken))
        {
            if (api.Json) ApiContext.WriteJsonLine(e);
            else
            {
                var level = e.Level switch
                {
                    "error" => "[red]error[/]",
                    "warn" => "[yellow]warn [/]",
                    _ => "[grey]info [/]",
                };
                AnsiConsole.MarkupLine($"[grey]{e.CreatedAt.ToLocalTime().ToString("HH:mm:ss", CultureInfo.InvariantCulture)}[/] {level} {Markup.Escape(e.Message)}");
            }
        }
    }

    private static Command LossCurve()
    {
        var output = new Option<FileInfo?>("--out", "-o") { Description = "SVG file to write (default: standard output)" };
        var command = new Command("loss-curve", "The job's loss curves as an SVG image") { JobId, output };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            var svg = await api.Client.GetFineTuningJobLossCurveAsync(api.Get(JobId), cancellationToken);
            if (api.Get(output) is not { } file)
            {
                Console.Out.Write(svg);
                return 0;
            }
            if (file.Directory is { Exists: false } folder) folder.Create();
            await File.WriteAllTextAsync(file.FullName, svg, new UTF8Encoding(false), cancellationToken);
            if (api.Json) ApiContext.WriteJson(new { path = file.FullName, bytes = new FileInfo(file.FullName).Length });
            else AnsiConsole.MarkupLine($"Wrote the loss curve of job [bold]{api.Get(JobId)}[/] to {Markup.Escape(file.FullName)}");
            return 0;
        });
        return command;
    }

    private static void Describe(FineTuningJobResponse j)
    {
        var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
        void Row(string label, string? value) => grid.AddRow($"[grey]{label}[/]", Markup.Escape(value ?? "-"));
        Row("job", j.Id.ToString());
        Row("model", j.Model);
        grid.AddRow("[grey]status[/]", DatasetsCommands.StatusMarkup(j.Status));
        Row("progress", $"{j.Step}/{j.TotalSteps} steps ({j.Progress:P0})" + (j.ResumedFromStep is { } from ? $", resumed from step {from}" : "") + (j.LastSavedStep > 0 ? $", last saved step {j.LastSavedStep}" : "") + $", attempt {j.Attempts}");
        Row("base", j.BaseCheckpointId.ToString());
        Row("dataset", j.DatasetId.ToString());
        var h = j.Hyperparameters;
        Row("hyperparameters", string.Create(CultureInfo.InvariantCulture,
            $"mode {h.Mode}, steps {h.Steps}, batch {h.BatchSize}, lr {h.LearningRate:G3}, warm-up {h.WarmupSteps}, spatial ratio {h.SpatialRatio}, " +
            $"gradient decay {h.GradientDecay}, seed {h.Seed}, save every {h.CheckpointInterval}"));
        Row("metrics", NonEmpty(j.Metrics));
        Row("evaluation", NonEmpty(j.Evaluation));
        Row("promote to", j.PromoteTo is null ? null : $"{j.Model}@{j.PromoteTo}" + (j.Promoted is { } promoted ? promoted ? " (promoted)" : " (not promoted)" : ""));
        Row("result", j.ResultCheckpointId?.ToString());
        Row("error", j.Error);
        Row("created", j.CreatedAt.ToString("u", CultureInfo.InvariantCulture));
        Row("started", j.StartedAt?.ToString("u", CultureInfo.InvariantCulture));
        Row("finished", j.FinishedAt?.ToString("u", CultureInfo.InvariantCulture));
        AnsiConsole.Write(grid);
    }

    private static string? NonEmpty(JsonElement value) =>
        value.ValueKind == JsonValueKind.Object && value.EnumerateObject().Any() ? value.GetRawText() : null;

    private static string? Loss(JsonElement metrics) =>
        metrics.ValueKind == JsonValueKind.Object && metrics.TryGetProperty("loss", out var loss) && loss.ValueKind == JsonValueKind.Number
            ? loss.GetDouble().ToString("G4", CultureInfo.InvariantCulture)
            : null;
}
