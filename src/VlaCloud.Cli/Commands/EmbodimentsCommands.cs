using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using VlaCloud.Client;
using VlaCloud.Contracts;
using VlaCloud.Sim;

namespace VlaCloud.Cli.Commands;

/// <summary><c>vlacloud embodiments list|create</c>: the robot bodies checkpoints drive.</summary>
internal static class EmbodimentsCommands
{
    public static Command Create() => new("embodiments", "Robot embodiments: list and create") { List(), CreateOne() };

    private static Command List()
    {
        var command = new Command("list", "List your embodiments and the public ones");
        command.SetApiAction(async (api, cancellationToken) =>
        {
            if (api.Json)
            {
                await api.WriteApiPageAsync("v1/embodiments", cancellationToken, ("limit", VlaCloudClient.ApiPageLimit));
                return 0;
            }
            var all = new List<EmbodimentResponse>();
            await foreach (var e in api.Client.ListAllEmbodimentsAsync(cancellationToken)) all.Add(e);
            var table = new Table().AddColumns("name", "actions", "state", "cameras", "hz", "chunk", "public", "id");
            foreach (var e in all)
                table.AddRow(Markup.Escape(e.Name), $"{e.ActionDim} {Markup.Escape(e.ActionSpace)}", e.StateDim.ToString(CultureInfo.InvariantCulture),
                    Markup.Escape(string.Join(", ", e.Cameras.Select(c => $"{c.Name} {c.Width}×{c.Height}"))),
                    e.ControlHz.ToString("0.##", CultureInfo.InvariantCulture), e.ChunkLength.ToString(CultureInfo.InvariantCulture),
                    e.IsPublic ? "yes" : "", e.Id.ToString());
            AnsiConsole.Write(table);
            return 0;
        });
        return command;
    }

    private static Command CreateOne()
    {
        var name = new Argument<string>("name") { Description = "Embodiment name (a-z, 0-9, '.', '_', '-')" };
        var sim = new Option<bool>("--sim") { Description = "Describe the built-in simulator's robot (sim-tabletop layout: 3 actions, 3 states, main and wrist cameras, 10 Hz, chunks of 8) and name the sim-tabletop environment as its simulator, so fine-tuning jobs can evaluate closed-loop" };
        var actionDim = new Option<int?>("--action-dim") { Description = "Values per action" };
        var stateDim = new Option<int?>("--state-dim") { Description = "Values of the proprioceptive state (0 for none)" };
        var actionSpace = new Option<string?>("--action-space") { Description = "What an action means, e.g. delta_eef+gripper" };
        var cameras = new Option<string[]>("--camera") { Description = "A camera as name=WIDTHxHEIGHT, main camera first (repeat)", AllowMultipleArgumentsPerToken = false };
        var hz = new Option<double?>("--control-hz") { Description = "Control rate" };
        var chunk = new Option<int?>("--chunk-length") { Description = "Actions per chunk" };
        var actionNames = new Option<string?>("--action-names") { Description = "Comma-separated action names" };
        var stateNames = new Option<string?>("--state-names") { Description = "Comma-separated state names" };
        var description = new Option<string?>("--description") { Description = "Free text" };
        var command = new Command("create", "Create an embodiment owned by your tenant")
        {
            name, sim, actionDim, stateDim, actionSpace, cameras, hz, chunk, actionNames, stateNames, description,
        };
        command.SetApiAction(async (api, cancellationToken) =>
        {
            var request = api.Get(sim) ? FromSimulator(api.Get(name)!) : new CreateEmbodimentRequest(api.Get(name)!, 0, 0, "", [], 0, 0);
            request = request with
            {
                ActionDim = api.Get(actionDim) ?? request.ActionDim,
                StateDim = api.Get(stateDim) ?? request.StateDim,
                ActionSpace = api.Get(actionSpace) ?? request.ActionSpace,
                Cameras = api.Get(cameras) is { Length: > 0 } given ? [.. given.Select(ParseCamera)] : request.Cameras,
                ControlHz = api.Get(hz) ?? request.ControlHz,
                ChunkLength = api.Get(chunk) ?? request.ChunkLength,
                ActionNames = Names(api.Get(actionNames)) ?? request.ActionNames,
                StateNames = Names(api.Get(stateNames)) ?? request.StateNames,
                Description = api.Get(description) ?? request.Description,
            };
            var created = await api.Client.CreateEmbodimentAsync(request, cancellationToken);
            if (api.Json) ApiContext.WriteJson(created);
            else AnsiConsole.MarkupLine($"Created embodiment [bold]{Markup.Escape(created.Name)}[/] ({created.Id}): {created.ActionDim} actions, {created.StateDim} state values, " +
                                        $"cameras {Markup.Escape(string.Join(", ", created.Cameras.Select(c => c.Name)))}");
            return 0;
        });
        return command;
    }

    /// <summary>The simulator's robot as an embodiment named <paramref name="name"/>.</summary>
    public static CreateEmbodimentRequest FromSimulator(string name)
    {
        var robot = SimEmbodiment.Tabletop;
        return new CreateEmbodimentRequest(name, robot.ActionDim, robot.StateDim, "delta_xy+gripper",
            [.. robot.Cameras.Select(c => new CameraDto(c.Name, c.Width, c.Height))], robot.ControlHz, robot.ChunkLength,
            [.. robot.ActionNames], [.. robot.StateNames], "The built-in tabletop simulator's robot: " + robot.ActionSemantics,
            Simulator: SimEnvironments.Tabletop);
    }

    private static CameraDto ParseCamera(string text)
    {
        var parts = text.Split('=', 2);
        var size = parts.Length == 2 ? parts[1].Split('x', 'X', '×') : [];
        return size.Length == 2 && int.TryParse(size[0], CultureInfo.InvariantCulture, out var w) && int.TryParse(size[1], CultureInfo.InvariantCulture, out var h)
            ? new CameraDto(parts[0], w, h)
            : throw new CliException($"--camera '{text}': expected name=WIDTHxHEIGHT, e.g. wrist=224x224.");
    }

    private static string[]? Names(string? text) => text?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
}
