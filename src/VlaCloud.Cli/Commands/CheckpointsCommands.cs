using System.CommandLine;
using System.Formats.Tar;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using VlaCloud.Client;
using VlaCloud.Contracts;

namespace VlaCloud.Cli.Commands;

/// <summary><c>vlacloud checkpoints list|get|put|download|import</c>: versioned policies.</summary>
internal static class CheckpointsCommands
{
    public static Command Create() => new("checkpoints", "Checkpoints: list, show, upload, register, download and import released ones") { List(), Get(), Put(), Download(), Import() };

    /// <summary>
    /// <c>checkpoints import RUN_DIR --qwen DIR --model M</c>: a released InternVLA-M1 run's bundle (the files the
    /// conversion reads) is uploaded, and the server converts it and registers it as the next version of M; the command
    /// waits for that. Nothing in the .pt runs: the server reads only tensors and plain containers. Converting on this
    /// machine instead is <c>vlacloud-lab import</c> (it needs libtorch, which this CLI does not ship).
    /// </summary>
    private static Command Import()
    {
        var run = new Argument<DirectoryInfo>("run") { Description = "Released run folder: config.yaml, dataset_statistics.json, checkpoints/steps_N_pytorch_model.pt" };
        var qwen = new Option<DirectoryInfo>("--qwen") { Description = "The Qwen2.5-VL folder the run was built on (config.json, tokenizer.json)", Required = true };
        var checkpoint = new Option<FileInfo?>("--checkpoint") { Description = "A .pt to send instead of the run's highest step" };
        var embodiment = EmbodimentRenamesOption();
        var model = new Option<string>("--model") { Description = "The model the import becomes the next version of", Required = true };
        var target = new Option<string?>("--register-for") { Description = "The embodiment (id or name) to register for, when --embodiment maps several tags" };
        var noWait = new Option<bool>("--no-wait") { Description = "Return once the import is queued" };
        var command = new Command("import", "Import a released InternVLA-M1 run (torch.save weights): upload it, the server converts and registers it")
            { run, qwen, checkpoint, embodiment, model, target, noWait };
        command.SetLocalAction((parse, cancellationToken) =>
        {
            var renames = ParseEmbodimentRenames(parse.GetValue(embodiment));
            return ApiCommand.RunWithClientAsync(parse, (api, token) => RemoteImportAsync(api, parse.GetValue(run)!, parse.GetValue(qwen)!,
                parse.GetValue(checkpoint), new CreateCheckpointImportRequest(parse.GetValue(model)!, parse.GetValue(target), renames), parse.GetValue(noWait), token),
                cancellationToken);
        });
        return command;
    }

    /// <summary><c>--embodiment TAG=NAME</c> (repeatable): how the run's statistics tags are named as VlaCloud embodiments.</summary>
    internal static Option<string[]> EmbodimentRenamesOption() => new("--embodiment")
    {
        Description = "TAG=NAME: name dataset_statistics.json's tag as a VlaCloud embodiment (repeatable)",
        AllowMultipleArgumentsPerToken = true,
    };

    /// <summary>Parses the <c>--embodiment TAG=NAME</c> values.</summary>
    /// <exception cref="ArgumentException">A value is not TAG=NAME.</exception>
    internal static Dictionary<string, string> ParseEmbodimentRenames(string[]? pairs)
    {
        var renames = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in pairs ?? [])
        {
            var at = pair.IndexOf('=', StringComparison.Ordinal);
            if (at <= 0 || at == pair.Length - 1) throw new ArgumentException($"--embodiment '{pair}' is not TAG=NAME");
            renames[pair[..at]] = pair[(at + 1)..];
        }
        return renames;
    }

    /// <summary>Writes the run's bundle to a temporary tar, uploads it, starts the import and (unless told not to) waits for it.</summary>
    private static async Task<int> RemoteImportAsync(ApiContext api, DirectoryInfo run, DirectoryInfo qwen, FileInfo? checkpoint,
        CreateCheckpointImportRequest request, bool noWait, CancellationToken cancellationToken)
    {
        var bundle = Path.Combine(Path.GetTempPath(), $"vlacloud-import-{Guid.NewGuid():N}.tar");
        try
        {
            string ptName;
            try
            {
                await using var file = File.Create(bundle);
                ptName = CheckpointImportBundle.Write(run.FullName, qwen.FullName, file, checkpoint?.FullName);
            }
            catch (InvalidDataException e)
            {
                ApiCommand.Error(e.Message);
                return ApiCommand.LocalError;
            }
            request = request with { CheckpointFile = checkpoint is null ? null : ptName };
            CheckpointImportResponse? import = null;
            if (api.Json) import = await api.Client.ImportCheckpointBundleAsync(bundle, request, null, cancellationToken);
            else
                await AnsiConsole.Progress().Columns(TransferColumns()).StartAsync(async ctx =>
                {
                    var bar = ctx.AddTask($"upload {Markup.Escape(run.Name)} ({Markup.Escape(ptName)})", maxValue: Math.Max(1, new FileInfo(bundle).Length));
                    import = await api.Client.ImportCheckpointBundleAsync(bundle, request, new InlineProgress<long>(sent => bar.Value = sent), cancellationToken);
                    bar.Value = bar.MaxValue;
                });
            File.Delete(bundle);
            if (!noWait)
                import = api.Json
                    ? await api.Client.WaitForCheckpointImportAsync(import!.Id, cancellationToken: cancellationToken)
                    : await AnsiConsole.Status().StartAsync($"importing {import!.Id}", _ => api.Client.WaitForCheckpointImportAsync(import!.Id, cancellationToken: cancellationToken));
            if (api.Json) ApiContext.WriteJson(import);
            else if (import!.Status == "succeeded")
            {
                var result = await api.Client.GetCheckpointAsync(import.CheckpointId!.Value, cancellationToken);
                AnsiConsole.MarkupLine($"Imported and registered [bold]{Markup.Escape(result.Model)}@v{result.Version}[/] for {Markup.Escape(result.Embodiment ?? "")} ({result.Id})");
            }
            else if (import.Status == "failed") ApiCommand.Error($"Import {import.Id} failed: {import.Error}");
            else AnsiConsole.MarkupLine($"Import [bold]{import.Id}[/] is {import.Status}.");
            return import!.Status == "failed" ? ApiCommand.Unsuccessful : 0;
        }
        finally
        {
            if (File.Exists(bundle)) File.Delete(bundle);
        }
    }

    private static Command Download()
    {
        var reference = new Argument<string>("checkpoint") { Description = "Id, model@vN or model@alias" };
        var embodiment = new Option<string?>("--embodiment") { Description = "Embodiment, when the model exists for several" };
        var output = new Option<string?>("--output", "-o") { Description = "File to write (default MODEL-vN.tar in the current folder); an interrupted download resumes from OUTPUT.part" };
        var command = new Command("download", "Download a checkpoint's policy tar (safetensors, config, normalisation; see docs/export.md), resumably, checked against its sha256")
            { reference, embodiment, output };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            var text = api.Get(reference)!;
            var checkpoint = Guid.TryParse(text, out var id)
                ? await api.Client.GetCheckpointAsync(id, cancellationToken)
                : await api.Client.ResolveCheckpointAsync(text, api.Get(embodiment), cancellationToken);
            var path = api.Get(output) ?? $"{checkpoint.Model}-v{checkpoint.Version}.tar";
            CheckpointDownload? download = null;
            if (api.Json || Console.IsOutputRedirected)
                download = await api.Client.DownloadCheckpointAsync(checkpoint.Id, path, null, cancellationToken);
            else
                await AnsiConsole.Progress().Columns(TransferColumns()).StartAsync(async ctx =>
                {
                    var bar = ctx.AddTask($"download {Markup.Escape(Path.GetFileName(path))}", maxValue: Math.Max(1, checkpoint.SizeBytes));
                    download = await api.Client.DownloadCheckpointAsync(checkpoint.Id, path, new InlineProgress<(long Done, long Total)>(p => bar.Value = p.Done), cancellationToken);
                    bar.Value = bar.MaxValue;
                });
            if (api.Json) ApiContext.WriteJson(new { path = download!.Path, sha256 = checkpoint.Sha256, size_bytes = checkpoint.SizeBytes, resumed_from_bytes = download.ResumedFromBytes });
            else Console.WriteLine($"{download!.Path}: {checkpoint.Model}@v{checkpoint.Version}, {Size(checkpoint.SizeBytes)}, sha256 {checkpoint.Sha256} verified" +
                                   (download.ResumedFromBytes > 0 ? $" (resumed after {Size(download.ResumedFromBytes)})" : ""));
            return 0;
        });
        return command;
    }

    private static Command List()
    {
        var model = new Option<string?>("--model") { Description = "Only this model" };
        var embodiment = new Option<string?>("--embodiment") { Description = "Only this embodiment (name or id)" };
        var limit = new Option<int>("--limit") { Description = "Most checkpoints to show (newest first)", DefaultValueFactory = _ => 50 };
        var command = new Command("list", "List your checkpoints and the public ones, newest first") { model, embodiment, limit };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            if (api.Json)
            {
                await api.WriteApiPageAsync("v1/checkpoints", cancellationToken,
                    ("model", api.Get(model)), ("embodiment", api.Get(embodiment)), ("limit", Math.Clamp(api.Get(limit), 1, VlaCloudClient.ApiPageLimit)));
                return 0;
            }
            var rows = new List<CheckpointResponse>();
            await foreach (var c in api.Client.ListAllCheckpointsAsync(api.Get(model), api.Get(embodiment), cancellationToken))
            {
                rows.Add(c);
                if (rows.Count >= api.Get(limit)) break;
            }
            var table = new Table().AddColumns("checkpoint", "embodiment", "size", "created", "public", "id");
            foreach (var c in rows)
                table.AddRow($"[bold]{Markup.Escape(c.Model)}[/]@v{c.Version}", Markup.Escape(c.Embodiment ?? c.EmbodimentId.ToString()), Size(c.SizeBytes),
                    c.CreatedAt.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture), c.IsPublic ? "yes" : "", c.Id.ToString());
            AnsiConsole.Write(table);
            return 0;
        });
        return command;
    }

    private static Command Get()
    {
        var reference = new Argument<string>("checkpoint") { Description = "Id, model@vN or model@alias" };
        var embodiment = new Option<string?>("--embodiment") { Description = "Embodiment, when the model exists for several" };
        var command = new Command("get", "Show one checkpoint (an id, model@vN or model@alias)") { reference, embodiment };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            var text = api.Get(reference)!;
            var checkpoint = Guid.TryParse(text, out var id)
                ? await api.Client.GetCheckpointAsync(id, cancellationToken)
                : await api.Client.ResolveCheckpointAsync(text, api.Get(embodiment), cancellationToken);
            if (api.Json) ApiContext.WriteJson(checkpoint);
            else Describe(checkpoint);
            return 0;
        });
        return command;
    }

    private static Command Put()
    {
        var file = new Argument<FileInfo>("file") { Description = "Policy tar (VlaPolicy.SaveTar; `vlacloud sim train` writes RUN/policy.tar), or a run folder holding policy.tar" };
        var model = new Option<string>("--model") { Description = "Model name; the checkpoint becomes its next version", Required = true };
        var embodiment = new Option<string>("--embodiment") { Description = "Embodiment (name or id)", Required = true };
        var metrics = new Option<string?>("--metrics") { Description = "Metrics as a JSON object, or @file.json" };
        var parent = new Option<Guid?>("--parent") { Description = "Id of the checkpoint this one was fine-tuned from" };
        var command = new Command("put", "Upload a policy tar and register it as the next version of a model") { file, model, embodiment, metrics, parent };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            var path = ResolveTar(api.Get(file)!);
            var (config, normalization) = ReadMetadata(path);
            var metricsJson = ParseMetrics(api.Get(metrics));

            ArtifactResponse? artifact = null;
            await using (var stream = File.OpenRead(path))
            {
                if (api.Json) artifact = await api.Client.PutArtifactAsync(stream, null, cancellationToken);
                else
                    await AnsiConsole.Progress().Columns(TransferColumns()).StartAsync(async ctx =>
                    {
                        var bar = ctx.AddTask($"upload {Markup.Escape(Path.GetFileName(path))}", maxValue: Math.Max(1, stream.Length));
                        artifact = await api.Client.PutArtifactAsync(stream, new InlineProgress<long>(sent => bar.Value = sent), cancellationToken);
                        bar.Value = bar.MaxValue;
                    });
            }
            var checkpoint = await api.Client.RegisterCheckpointAsync(new RegisterCheckpointRequest(
                api.Get(model)!, api.Get(embodiment)!, artifact!.Sha256, config, normalization, metricsJson, api.Get(parent)), cancellationToken);
            if (api.Json) ApiContext.WriteJson(checkpoint);
            else AnsiConsole.MarkupLine($"Registered [bold]{Markup.Escape(checkpoint.Model)}@v{checkpoint.Version}[/] for {Markup.Escape(checkpoint.Embodiment ?? "")} " +
                                        $"({checkpoint.Id}, sha256 {checkpoint.Sha256[..12]}…, {Size(checkpoint.SizeBytes)})");
            return 0;
        });
        return command;
    }

    /// <summary>The policy tar at <paramref name="file"/>, or in it when it is a run folder.</summary>
    private static string ResolveTar(FileInfo file)
    {
        if (File.Exists(file.FullName)) return file.FullName;
        var inRun = Path.Combine(file.FullName, "policy.tar");
        if (Directory.Exists(file.FullName) && File.Exists(inRun)) return inRun;
        throw new CliException($"{file.FullName} is neither a policy tar nor a folder holding policy.tar.");
    }

    /// <summary>The checkpoint's <c>config.json</c> and <c>normalization.json</c>, read from the tar.</summary>
    internal static (JsonElement Config, JsonElement Normalization) ReadMetadata(string tarPath)
    {
        JsonElement? config = null, normalization = null;
        using var stream = File.OpenRead(tarPath);
        try
        {
            using var reader = new TarReader(stream);
            while (reader.GetNextEntry() is { } entry)
            {
                var name = Path.GetFileName(entry.Name);
                if (entry.DataStream is null || name is not ("config.json" or "normalization.json")) continue;
                using var document = JsonDocument.Parse(entry.DataStream);
                if (name == "config.json") config = document.RootElement.Clone();
                else normalization = document.RootElement.Clone();
            }
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or JsonException)
        {
            throw new CliException($"{tarPath} is not a policy tar: {e.Message}");
        }
        return config is { } c && normalization is { } n
            ? (c, n)
            : throw new CliException($"{tarPath} lacks config.json or normalization.json; is it a policy tar (VlaPolicy.SaveTar)?");
    }

    private static JsonElement ParseMetrics(string? text)
    {
        if (text is null) return default;
        var json = text.StartsWith('@') ? File.ReadAllText(text[1..]) : text;
        try
        {
            using var document = JsonDocument.Parse(json);
            return document.RootElement.ValueKind == JsonValueKind.Object
                ? document.RootElement.Clone()
                : throw new CliException("--metrics must be a JSON object.");
        }
        catch (JsonException e)
        {
            throw new CliException($"--metrics is not valid JSON: {e.Message}");
        }
    }

    private static void Describe(CheckpointResponse c)
    {
        var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
        void Row(string name, string? value) => grid.AddRow($"[grey]{name}[/]", Markup.Escape(value ?? "-"));
        Row("checkpoint", $"{c.Model}@v{c.Version}");
        Row("id", c.Id.ToString());
        Row("embodiment", $"{c.Embodiment} ({c.EmbodimentId})");
        Row("public", c.IsPublic ? "yes" : "no");
        Row("sha256", c.Sha256);
        Row("size", Size(c.SizeBytes));
        Row("created", c.CreatedAt.ToString("u", CultureInfo.InvariantCulture));
        Row("parent", c.ParentCheckpointId?.ToString());
        Row("dataset", c.DatasetId?.ToString());
        Row("job", c.FineTuningJobId?.ToString());
        Row("metrics", c.Metrics.ValueKind == JsonValueKind.Object && c.Metrics.EnumerateObject().Any() ? c.Metrics.GetRawText() : null);
        AnsiConsole.Write(grid);
    }

    internal static string Size(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.0} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.0} MiB",
        >= 1L << 10 => $"{bytes / (double)(1L << 10):0.0} KiB",
        _ => $"{bytes} B",
    };

    internal static ProgressColumn[] TransferColumns() =>
        [new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn()];
}
