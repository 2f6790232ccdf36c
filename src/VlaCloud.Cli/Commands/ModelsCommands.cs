using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using VlaCloud.Contracts;

namespace VlaCloud.Cli.Commands;

/// <summary><c>vlacloud models aliases set|rollback|history|list</c>: promotion and rollback of a model's versions.</summary>
internal static class ModelsCommands
{
    private static readonly Argument<string> Model = new("model") { Description = "Model name" };
    private static readonly Argument<string> Alias = new("alias") { Description = "Alias, e.g. production" };
    private static readonly Option<string?> Reason = new("--reason") { Description = "Why; kept in the alias's history" };

    public static Command Create() => new("models", "Models and their aliases")
    {
        new Command("aliases", "Movable names for a model's versions: promote, roll back, see history") { List(), Set(), Rollback(), History() },
    };

    private static Command List()
    {
        var command = new Command("list", "List a model's aliases") { Model };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            if (api.Json)
            {
                await api.WriteApiPageAsync($"v1/models/{Uri.EscapeDataString(api.Get(Model)!)}/aliases", cancellationToken);
                return 0;
            }
            var page = await api.Client.ListAliasesAsync(api.Get(Model)!, cancellationToken);
            var table = new Table().AddColumns("alias", "version", "checkpoint", "updated");
            foreach (var a in page.Data)
                table.AddRow($"[bold]{Markup.Escape(a.Model)}@{Markup.Escape(a.Alias)}[/]", a.Version is { } v ? $"v{v}" : "-", a.CheckpointId.ToString(),
                    a.UpdatedAt.ToString("u", CultureInfo.InvariantCulture));
            AnsiConsole.Write(table);
            return 0;
        });
        return command;
    }

    private static Command Set()
    {
        var target = new Argument<string>("checkpoint") { Description = "Target: an id, model@vN, vN (this model's version N) or another alias" };
        var command = new Command("set", "Point an alias at a checkpoint (promote)") { Model, Alias, target, Reason };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            var model = api.Get(Model)!;
            var reference = api.Get(target)!;
            // "v3" is shorthand for "model@v3".
            if (reference.Length > 1 && reference[0] == 'v' && int.TryParse(reference[1..], CultureInfo.InvariantCulture, out _)) reference = $"{model}@{reference}";
            var moved = await api.Client.SetAliasAsync(model, api.Get(Alias)!, reference, api.Get(Reason), cancellationToken);
            Print(api, moved, "now points at");
            return 0;
        });
        return command;
    }

    private static Command Rollback()
    {
        var command = new Command("rollback", "Move an alias back to where it pointed before its last move") { Model, Alias, Reason };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            var moved = await api.Client.RollbackAliasAsync(api.Get(Model)!, api.Get(Alias)!, api.Get(Reason), cancellationToken);
            Print(api, moved, "rolled back to");
            return 0;
        });
        return command;
    }

    private static Command History()
    {
        var limit = new Option<int>("--limit") { Description = "Most moves to show", DefaultValueFactory = _ => 20 };
        var command = new Command("history", "An alias's moves, newest first") { Model, Alias, limit };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            if (api.Json)
            {
                await api.WriteApiPageAsync($"v1/models/{Uri.EscapeDataString(api.Get(Model)!)}/aliases/{Uri.EscapeDataString(api.Get(Alias)!)}/history", cancellationToken,
                    ("limit", Math.Clamp(api.Get(limit), 1, 100)));
                return 0;
            }
            var page = await api.Client.GetAliasHistoryAsync(api.Get(Model)!, api.Get(Alias)!, limit: Math.Clamp(api.Get(limit), 1, 100), cancellationToken: cancellationToken);
            var table = new Table().AddColumns("moved at", "from", "to", "by key", "reason");
            foreach (var m in page.Data)
                table.AddRow(m.MovedAt.ToString("u", CultureInfo.InvariantCulture), m.FromCheckpointId?.ToString() ?? "-", m.ToCheckpointId?.ToString() ?? "(deleted)",
                    m.MovedByKeyId?.ToString() ?? "-", Markup.Escape(m.Reason ?? ""));
            AnsiConsole.Write(table);
            return 0;
        });
        return command;
    }

    private static void Print(ApiContext api, AliasResponse alias, string verb)
    {
        if (api.Json) ApiContext.WriteJson(alias);
        else AnsiConsole.MarkupLine($"[bold]{Markup.Escape(alias.Model)}@{Markup.Escape(alias.Alias)}[/] {verb} " +
                                    $"[bold]{(alias.Version is { } v ? $"v{v}" : "?")}[/] ({alias.CheckpointId})");
    }
}
