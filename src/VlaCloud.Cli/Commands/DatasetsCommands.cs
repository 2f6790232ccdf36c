using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using VlaCloud.Client;
using VlaCloud.Contracts;

namespace VlaCloud.Cli.Commands;

/// <summary><c>vlacloud datasets upload|list|show</c>: training data, uploaded in parts and validated by the server.</summary>
internal static class DatasetsCommands
{
    public static Command Create() => new("datasets", "Datasets: upload (in parts, then validated), list, show") { Upload(), List(), Show() };

    private static Command Upload()
    {
        var file = new Argument<FileInfo>("file") { Description = "A LeRobot dataset (v2.1 or v3.0) as a tar archive" };
        var embodiment = new Option<string>("--embodiment") { Description = "Embodiment the episodes were recorded on (name or id)", Required = true };
        var partSize = new Option<string>("--part-size")
        {
            Description = "Bytes per part: a number with an optional K, M or G suffix (KiB, MiB, GiB); a failed part is sent again",
            DefaultValueFactory = _ => "8M",
        };
        var name = new Option<string?>("--name") { Description = "Dataset name (default: the file's name)" };
        var noWait = new Option<bool>("--no-wait") { Description = "Return once the upload is complete, without waiting for validation" };
        var command = new Command("upload", "Upload a dataset archive in parts, then wait for the server to validate it") { file, embodiment, partSize, name, noWait };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            var path = api.Get(file)!.FullName;
            if (!File.Exists(path)) throw new CliException($"{path} does not exist.");
            var options = new UploadFileOptions
            {
                Embodiment = api.Get(embodiment), Filename = api.Get(name), MimeType = "application/x-tar", PartSize = ParsePartSize(api.Get(partSize)!),
            };

            UploadResponse? upload = null;
            if (api.Json) upload = await api.Client.UploadFileAsync(path, options, null, cancellationToken);
            else
                await AnsiConsole.Progress().Columns(CheckpointsCommands.TransferColumns()).StartAsync(async ctx =>
                {
                    var bar = ctx.AddTask($"upload {Markup.Escape(Path.GetFileName(path))}", maxValue: Math.Max(1, new FileInfo(path).Length));
                    upload = await api.Client.UploadFileAsync(path, options, new InlineProgress<long>(sent => bar.Value = sent), cancellationToken);
                    bar.Value = bar.MaxValue;
                });
            var id = upload!.DatasetId ?? throw new InvalidDataException($"Upload {upload.Id} completed without a dataset.");

            DatasetResponse dataset;
            if (api.Get(noWait)) dataset = await api.Client.GetDatasetAsync(id, cancellationToken);
            else if (api.Json) dataset = await api.Client.WaitForDatasetAsync(id, cancellationToken: cancellationToken);
            else dataset = await AnsiConsole.Status().StartAsync($"validating dataset {id}", _ => api.Client.WaitForDatasetAsync(id, cancellationToken: cancellationToken));

            if (api.Json) ApiContext.WriteJson(dataset);
            else if (dataset.Status == "validating") AnsiConsole.MarkupLine($"Uploaded; dataset [bold]{id}[/] is validating. See it with: vlacloud datasets show {id}");
            else if (dataset.Status == "ready") AnsiConsole.MarkupLine($"Dataset [bold]{id}[/] is [green]ready[/]: {Summary(dataset)}");
            else PrintIssues(dataset);
            return dataset.Status == "failed" ? ApiCommand.Unsuccessful : 0;
        });
        return command;
    }

    private static Command List()
    {
        var status = new Option<string?>("--status") { Description = "Only datasets in this state" };
        status.AcceptOnlyFromAmong("validating", "ready", "failed");
        var limit = new Option<int>("--limit") { Description = "Most datasets to show (newest first)", DefaultValueFactory = _ => 50 };
        var command = new Command("list", "List your datasets, newest first") { status, limit };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            if (api.Json)
            {
                await api.WriteApiPageAsync("v1/datasets", cancellationToken, ("status", api.Get(status)), ("limit", Math.Clamp(api.Get(limit), 1, VlaCloudClient.ApiPageLimit)));
                return 0;
            }
            var rows = new List<DatasetResponse>();
            await foreach (var d in api.Client.ListAllDatasetsAsync(api.Get(status), cancellationToken))
            {
                rows.Add(d);
                if (rows.Count >= api.Get(limit)) break;
            }
            var table = new Table().AddColumns("name", "status", "embodiment", "episodes", "frames", "size", "created", "id");
            foreach (var d in rows)
                table.AddRow(Markup.Escape(d.Name), StatusMarkup(d.Status), Markup.Escape(d.Embodiment ?? d.EmbodimentId.ToString()), d.Episodes?.ToString(CultureInfo.InvariantCulture) ?? "-",
                    d.Frames?.ToString(CultureInfo.InvariantCulture) ?? "-", CheckpointsCommands.Size(d.SizeBytes), d.CreatedAt.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture), d.Id.ToString());
            AnsiConsole.Write(table);
            return 0;
        });
        return command;
    }

    private static Command Show()
    {
        var id = new Argument<Guid>("id") { Description = "Dataset id" };
        var command = new Command("show", "Show a dataset: validation outcome, problems, statistics") { id };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            var dataset = await api.Client.GetDatasetAsync(api.Get(id), cancellationToken);
            if (api.Json)
            {
                ApiContext.WriteJson(dataset);
                return 0;
            }
            var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
            void Row(string label, string? value) => grid.AddRow($"[grey]{label}[/]", Markup.Escape(value ?? "-"));
            Row("dataset", dataset.Name);
            Row("id", dataset.Id.ToString());
            grid.AddRow("[grey]status[/]", StatusMarkup(dataset.Status));
            Row("embodiment", $"{dataset.Embodiment} ({dataset.EmbodimentId})");
            Row("format", dataset.Format);
            Row("episodes", dataset.Episodes?.ToString(CultureInfo.InvariantCulture));
            Row("frames", dataset.Frames?.ToString(CultureInfo.InvariantCulture));
            Row("size", CheckpointsCommands.Size(dataset.SizeBytes));
            Row("sha256", dataset.ArtifactSha256);
            Row("created", dataset.CreatedAt.ToString("u", CultureInfo.InvariantCulture));
            Row("validated", dataset.ValidatedAt?.ToString("u", CultureInfo.InvariantCulture));
            Row("statistics", dataset.Statistics.ValueKind == JsonValueKind.Object && dataset.Statistics.EnumerateObject().Any()
                ? string.Join(", ", dataset.Statistics.EnumerateObject().Select(p => p.Name))
                : null);
            AnsiConsole.Write(grid);
            foreach (var issue in dataset.Issues) AnsiConsole.MarkupLine($"  [yellow]{Markup.Escape(issue.File)}[/]: {Markup.Escape(issue.Message)}");
            return 0;
        });
        return command;
    }

    /// <summary>Why a dataset failed, on standard error: one line per problem, with the file it is in.</summary>
    private static void PrintIssues(DatasetResponse dataset)
    {
        var err = ApiCommand.ErrorConsole;
        err.MarkupLine($"[red bold]error:[/] dataset [bold]{dataset.Id}[/] failed validation ({dataset.Issues.Count} problem{(dataset.Issues.Count == 1 ? "" : "s")}):");
        foreach (var issue in dataset.Issues) err.MarkupLine($"  [yellow]{Markup.Escape(issue.File)}[/]: {Markup.Escape(issue.Message)}");
    }

    private static string Summary(DatasetResponse d) =>
        $"{d.Episodes} episodes, {d.Frames} frames ({Markup.Escape(d.Format ?? "?")}, {CheckpointsCommands.Size(d.SizeBytes)})";

    /// <summary>A dataset's or a job's status, in colour.</summary>
    internal static string StatusMarkup(string status) => status switch
    {
        "ready" or "succeeded" => $"[green]{status}[/]",
        "failed" => $"[red]{status}[/]",
        "cancelled" => $"[grey]{status}[/]",
        // Anything else is in progress (validating, queued, running).
        _ => $"[yellow]{Markup.Escape(status)}[/]",
    };

    /// <summary>A part size: bytes, or a number with K, M or G (binary units, an optional "iB" or "B").</summary>
    internal static int ParsePartSize(string text)
    {
        var trimmed = text.Trim();
        var digits = trimmed.Length - trimmed.TrimStart("0123456789.".ToCharArray()).Length;
        var number = trimmed[..digits];
        var unit = trimmed[digits..].Trim().ToUpperInvariant();
        long multiplier = unit switch
        {
            "" or "B" => 1,
            "K" or "KB" or "KIB" => 1L << 10,
            "M" or "MB" or "MIB" => 1L << 20,
            "G" or "GB" or "GIB" => 1L << 30,
            _ => 0,
        };
        if (multiplier == 0 || !double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) || value <= 0)
            throw new CliException($"--part-size '{text}' is not a size such as 8M, 512K or 1048576.");
        var bytes = (long)(value * multiplier);
        if (bytes is < 1 or > MaxPartBytes) throw new CliException($"--part-size must be between 1 byte and {MaxPartBytes >> 20} MiB (the server's largest part).");
        return (int)bytes;
    }

    private const long MaxPartBytes = 64L << 20;
}
