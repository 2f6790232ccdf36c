using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using VlaCloud.Contracts;

namespace VlaCloud.Cli.Commands;

/// <summary><c>vlacloud usage</c>: metered use per day and the monthly compute quota.</summary>
internal static class UsageCommand
{
    public static Command Create()
    {
        var from = new Option<DateOnly?>("--from") { Description = "First UTC day (yyyy-mm-dd; default: the 1st of this month)" };
        var to = new Option<DateOnly?>("--to") { Description = "Last UTC day (default: today)" };
        var command = new Command("usage", "Requests, actions and compute per day and checkpoint, and the compute quota") { from, to };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            var usage = await api.Client.GetUsageAsync(api.Get(from), api.Get(to), cancellationToken);
            if (api.Json)
            {
                ApiContext.WriteJson(usage);
                return 0;
            }
            // Rows are per checkpoint; people think per model, so the table names each by model@vN (the id only when the
            // checkpoint is gone), and a second table sums each model over the days.
            static string Name(UsageDayResponse d) => d.Model is { } model ? $"{model}@v{d.Version}" : d.CheckpointId?.ToString() ?? "-";
            var table = new Table().Title($"usage {usage.From:yyyy-MM-dd} … {usage.To:yyyy-MM-dd}").AddColumns("day", "model", "requests", "actions", "compute");
            foreach (var d in usage.Data)
                table.AddRow(d.Day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), Markup.Escape(Name(d)), N(d.Requests), N(d.Actions), Ms(d.ComputeMs));
            table.AddRow("[bold]total[/]", "", N(usage.TotalRequests), N(usage.TotalActions), Ms(usage.TotalComputeMs));
            AnsiConsole.Write(table);
            var byModel = new Table().Title("per model").AddColumns("model", "requests", "actions", "compute");
            foreach (var m in usage.Data.GroupBy(d => d.Model ?? d.CheckpointId?.ToString() ?? "-").OrderByDescending(g => g.Sum(d => d.ComputeMs)))
                byModel.AddRow(Markup.Escape(m.Key), N(m.Sum(d => d.Requests)), N(m.Sum(d => d.Actions)), Ms(m.Sum(d => d.ComputeMs)));
            if (usage.Data.Count > 0) AnsiConsole.Write(byModel);
            var q = usage.ComputeQuota;
            AnsiConsole.MarkupLine($"compute quota: {Ms(q.UsedMs)} used of {Ms(q.LimitMs)} ({Ms(q.RemainingMs)} left), resets {q.ResetsAt:yyyy-MM-dd HH:mm} UTC");
            return 0;
        });
        return command;
    }

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Ms(long ms) => ms >= 60_000 ? $"{ms / 60_000.0:0.0} min" : $"{ms / 1000.0:0.0} s";
}
