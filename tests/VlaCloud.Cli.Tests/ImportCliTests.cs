using System.Text.Json.Nodes;
using VlaCloud.Parity;

namespace VlaCloud.Cli.Tests;

/// <summary><c>vlacloud-lab import</c> as a user runs it on a released-layout run folder.</summary>
public sealed class ImportCliTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("vlacloud-import-cli-").FullName;
    private readonly Dictionary<string, string> env;

    public ImportCliTests() => env = new() { ["VLACLOUD_CONFIG"] = Path.Combine(folder, "config.json"), ["OMP_NUM_THREADS"] = "1" };

    public void Dispose() => Directory.Delete(folder, recursive: true);

    /// <summary>A run of the tiny InternVLA-M1 config (config.yaml written as JSON, which YAML reads) whose .pt is <paramref name="pt"/>.</summary>
    private (string Run, string Qwen) Run(string pt)
    {
        var run = Path.Combine(folder, "run");
        var qwen = Path.Combine(folder, "qwen");
        Directory.CreateDirectory(Path.Combine(run, "checkpoints"));
        Directory.CreateDirectory(qwen);
        var yaml = new JsonObject { ["framework"] = TinyInternVlaM1.FrameworkJson(), ["datasets"] = new JsonObject { ["vla_data"] = new JsonObject { ["image_size"] = TinyInternVlaM1.ImageSize } } };
        File.WriteAllText(Path.Combine(run, "config.yaml"), yaml.ToJsonString());
        File.WriteAllText(Path.Combine(run, "dataset_statistics.json"),
            """{"bridge": {"action": {"mean": [0,0,0,0,0,0,0], "std": [1,1,1,1,1,1,1], "q01": [-1,-1,-1,-1,-1,-1,0], "q99": [1,1,1,1,1,1,1], "mask": [true,true,true,true,true,true,false]}}}""");
        File.WriteAllText(Path.Combine(qwen, "config.json"), TinyInternVlaM1.QwenConfigJson().ToJsonString());
        File.WriteAllText(Path.Combine(qwen, "tokenizer.json"), TinyInternVlaM1.TokenizerJson());
        File.Copy(pt, Path.Combine(run, "checkpoints", "steps_10_pytorch_model.pt"));
        return (run, qwen);
    }

    private static string Fixture(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "VlaCloud.sln"))) return Path.Combine(dir.FullName, "tests", "fixtures", "torch-pickle", name);
        throw new InvalidOperationException("VlaCloud.sln not found");
    }

    [Fact]
    public async Task Importing_a_pt_that_pickles_a_function_fails_with_a_clear_message_and_writes_nothing()
    {
        var (run, qwen) = Run(Fixture("function_global.pt"));
        var output = Path.Combine(folder, "m1.tar");
        var result = await Vlacloud.RunLabAsync(env, "import", run, "-o", output, "--qwen", qwen, "--embodiment", "bridge=widowx");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("posix.system", result.Error);
        Assert.DoesNotContain("   at ", result.Error);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task Importing_a_pt_whose_tensors_are_not_the_models_names_what_is_missing()
    {
        var (run, qwen) = Run(Fixture("state_dict.pt"));
        var result = await Vlacloud.RunLabAsync(env, "import", run, "-o", Path.Combine(folder, "m1.tar"), "--qwen", qwen);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("missing", result.Error);
        Assert.Contains("qwen_vl_interface.model.", result.Error);
    }
}
