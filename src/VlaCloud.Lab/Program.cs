using System.CommandLine;
using VlaCloud.Cli.Commands;
using VlaCloud.Lab.Commands;

// The model on this machine: everything that needs libtorch. The simulator's data commands come from the CLI as they are.
var sim = SimCommands.Create();
sim.Description = "Built-in tabletop simulator: generate datasets, roll out, train and evaluate policies locally";
sim.Subcommands.Add(SimTrainCommands.Train());
sim.Subcommands.Add(SimEvaluateCommand.Create());
sim.Subcommands.Add(SimProbeCommand.Create());
sim.Subcommands.Add(SimRecipeCommand.Create());
var root = new RootCommand("vlacloud-lab: train, evaluate and convert policies on this machine (CPU, or CUDA where built for it)")
{
    sim,
    LocalImportCommand.Create(),
};
return await root.Parse(args).InvokeAsync();
