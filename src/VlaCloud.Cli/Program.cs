using System.CommandLine;
using VlaCloud.Cli.Commands;

// One command group per file under Commands/. --profile and --json apply to every API command.
var root = new RootCommand("vlacloud: the VlaCloud command line")
{
    LoginCommand.Create(),
    EmbodimentsCommands.Create(),
    CheckpointsCommands.Create(),
    ModelsCommands.Create(),
    DatasetsCommands.Create(),
    JobsCommands.Create(),
    UsageCommand.Create(),
    ActCommand.Create(),
    StreamCommand.Create(),
    SimCommands.Create(),
};
root.Options.Add(ApiCommand.ProfileOption);
root.Options.Add(ApiCommand.JsonOption);
return await root.Parse(args).InvokeAsync();
