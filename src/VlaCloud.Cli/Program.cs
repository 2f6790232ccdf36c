using System.CommandLine;
using VlaCloud.Cli.Commands;

// One command group per file under Commands/; the API groups (datasets, jobs, checkpoints, act) join here.
var root = new RootCommand("vlacloud: the VlaCloud command line")
{
    SimCommands.Create(),
};
return await root.Parse(args).InvokeAsync();
