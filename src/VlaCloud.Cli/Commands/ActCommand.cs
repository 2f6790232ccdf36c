using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using VlaCloud.Contracts;

namespace VlaCloud.Cli.Commands;

/// <summary><c>vlacloud act</c>: one observation from image files in, the action chunk out as a table.</summary>
internal static class ActCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint", "-c") { Description = "Checkpoint: id, model@vN or model@alias", Required = true };
        var images = new Option<string[]>("--image") { Description = "camera=file.png (or .jpg), one per camera of the embodiment (repeat)", Required = true };
        var state = new Option<string?>("--state") { Description = "Proprioceptive state, comma-separated numbers" };
        var instruction = new Option<string>("--instruction", "-i") { Description = "The task in words", Required = true };
        var steps = new Option<int?>("--steps") { Description = "Denoising steps (default: the checkpoint's)" };
        var seed = new Option<long?>("--seed") { Description = "Noise seed, for repeatable actions" };
        var spatial = new Option<string?>("--spatial") { Description = $"Also ask for the spatial answer: {string.Join(", ", SpatialKinds.All)}" };
        spatial.AcceptOnlyFromAmong([.. SpatialKinds.All]);
        var embodiment = new Option<string?>("--embodiment") { Description = "Embodiment, when the model exists for several" };
        var command = new Command("act", "Compute an action chunk for one observation (image files, state, instruction)")
        {
            checkpoint, images, state, instruction, steps, seed, spatial, embodiment,
        };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            var request = new ActRequest(api.Get(checkpoint)!,
                new ObservationInput(ReadImages(api.Get(images)!), ParseNumbers(api.Get(state)), api.Get(instruction)!),
                new ActOptions(api.Get(steps), api.Get(seed), api.Get(spatial)), api.Get(embodiment));
            var response = await api.Client.ActAsync(request, cancellationToken);
            if (api.Json)
            {
                ApiContext.WriteJson(response);
                return 0;
            }
            var names = await ActionNamesAsync(api, response.Checkpoint.Embodiment, response.Actions.FirstOrDefault()?.Length ?? 0, cancellationToken);
            var table = new Table().Title($"{response.Checkpoint.Model}@v{response.Checkpoint.Version} · {response.Checkpoint.Embodiment}")
                .AddColumn(new TableColumn("t").RightAligned());
            foreach (var name in names) table.AddColumn(new TableColumn(Markup.Escape(name)).RightAligned());
            for (var t = 0; t < response.Actions.Length; t++)
                table.AddRow([t.ToString(CultureInfo.InvariantCulture), .. response.Actions[t].Select(v => v.ToString("0.0000", CultureInfo.InvariantCulture))]);
            AnsiConsole.Write(table);
            if (response.Spatial is { } answer)
            {
                var points = answer.Points.Length == 0 ? "no answer"
                    : string.Join(" ", answer.Points.Select(p => string.Create(CultureInfo.InvariantCulture, $"({p[0]:0.#}, {p[1]:0.#})")));
                AnsiConsole.MarkupLine($"spatial {Markup.Escape(answer.Kind)}: {points}");
                // A checkpoint that answers in text (internvla-m1) shows what the model wrote.
                if (answer.Text is { } text) AnsiConsole.MarkupLine($"[grey]model text: {Markup.Escape(text)}[/]");
            }
            var timing = response.Timing;
            AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                $"[grey]seed {response.Seed} · queue {timing.QueueMs:0.0} ms · compute {timing.ComputeMs:0.0} ms · total {timing.TotalMs:0.0} ms · batch {timing.BatchSize}[/]"));
            return 0;
        });
        return command;
    }

    /// <summary>Images by camera from <c>camera=file</c> pairs; PNG and JPEG files are sent as they are.</summary>
    internal static Dictionary<string, ImageInput> ReadImages(IEnumerable<string> pairs)
    {
        var images = new Dictionary<string, ImageInput>();
        foreach (var pair in pairs)
        {
            var parts = pair.Split('=', 2);
            if (parts.Length != 2 || parts[0].Length == 0) throw new CliException($"--image '{pair}': expected camera=file.png.");
            var format = Path.GetExtension(parts[1]).ToLowerInvariant() switch
            {
                ".png" => "png",
                ".jpg" or ".jpeg" => "jpeg",
                var other => throw new CliException($"--image '{pair}': {other} files are not supported; use PNG or JPEG."),
            };
            if (!File.Exists(parts[1])) throw new CliException($"--image '{pair}': {Path.GetFullPath(parts[1])} does not exist.");
            images[parts[0]] = new ImageInput(format, File.ReadAllBytes(parts[1]));
        }
        return images;
    }

    internal static float[]? ParseNumbers(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        return [.. text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(v =>
            float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var f) ? f : throw new CliException($"--state: '{v}' is not a number."))];
    }

    private static async Task<IReadOnlyList<string>> ActionNamesAsync(ApiContext api, string embodiment, int dim, CancellationToken cancellationToken)
    {
        await foreach (var e in api.Client.ListAllEmbodimentsAsync(cancellationToken))
            if (e.Name == embodiment && e.ActionNames.Count == dim) return e.ActionNames;
        return [.. Enumerable.Range(0, dim).Select(d => $"a{d}")];
    }
}
