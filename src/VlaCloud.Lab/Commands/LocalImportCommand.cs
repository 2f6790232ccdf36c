using System.CommandLine;
using Spectre.Console;
using VlaCloud.Cli.Commands;
using VlaCloud.Policy;
using VlaCloud.Policy.InternVla;

namespace VlaCloud.Lab.Commands;

/// <summary>
/// <c>vlacloud-lab import RUN_DIR -o OUT.tar --qwen DIR</c>: a released InternVLA-M1 run converted on this machine into a
/// policy tar (then <c>vlacloud checkpoints put</c> registers it). Nothing in the .pt runs: only tensors and plain
/// containers are read. <c>vlacloud checkpoints import</c> does the same on the server.
/// </summary>
internal static class LocalImportCommand
{
    /// <summary>The <c>import</c> command.</summary>
    public static Command Create()
    {
        var run = new Argument<DirectoryInfo>("run") { Description = "Released run folder: config.yaml, dataset_statistics.json, checkpoints/steps_N_pytorch_model.pt" };
        var output = new Option<FileInfo>("--output", "-o") { Description = "Policy tar to write", Required = true };
        var qwen = new Option<DirectoryInfo>("--qwen") { Description = "The Qwen2.5-VL folder the run was built on (config.json, tokenizer.json)", Required = true };
        var checkpoint = new Option<FileInfo?>("--checkpoint") { Description = "A .pt to read instead of the run's highest step" };
        var embodiment = CheckpointsCommands.EmbodimentRenamesOption();
        var command = new Command("import", "Convert a released InternVLA-M1 run (torch.save weights) into a policy tar on this machine")
            { run, output, qwen, checkpoint, embodiment };
        command.SetAction(parse =>
        {
            var tar = parse.GetValue(output)!;
            try
            {
                var result = InternVlaM1Import.Import(parse.GetValue(run)!.FullName, parse.GetValue(qwen)!.FullName,
                    tar.FullName, parse.GetValue(checkpoint)?.FullName, CheckpointsCommands.ParseEmbodimentRenames(parse.GetValue(embodiment)));
                AnsiConsole.MarkupLine($"Imported [bold]{Markup.Escape(Path.GetFileName(result.Checkpoint))}[/]: {result.Tensors:N0} tensors, {result.Parameters:N0} parameters, " +
                                       $"embodiments {Markup.Escape(string.Join(", ", result.Embodiments))} → {Markup.Escape(tar.FullName)}");
                return 0;
            }
            catch (Exception e) when (e is CheckpointException or ArgumentException)
            {
                ApiCommand.Error(e.Message);
                return ApiCommand.LocalError;
            }
        });
        return command;
    }
}
