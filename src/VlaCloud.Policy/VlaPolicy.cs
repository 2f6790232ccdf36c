using TorchSharp;
using TorchSharp.Modules;
using VlaCloud.Policy.Checkpoint;
using VlaCloud.Policy.InternVla;
using VlaCloud.Policy.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy;

/// <summary>The losses of one batch; tensors live in the caller's dispose scope.</summary>
/// <param name="Total">What to call <c>backward()</c> on: action loss + SpatialLossWeight × spatial loss.</param>
/// <param name="Action">Flow-matching MSE over valid steps and dims, or null without action samples.</param>
/// <param name="Spatial">Cross-entropy over answer tokens, or null without spatial samples or in vanilla mode.</param>
public sealed record PolicyLoss(Tensor Total, Tensor? Action, Tensor? Spatial);

/// <summary>Parameters by part, for per-part learning rates.</summary>
public sealed record PolicyParameterGroups(IReadOnlyList<Parameter> Vlm, IReadOnlyList<Parameter> ActionExpert, IReadOnlyList<Parameter> Rest);

/// <summary>
/// The ST4VLA policy: two verbs, <see cref="ComputeLoss"/> and <see cref="SampleActions(IReadOnlyList{Observation}, IReadOnlyList{long}, int?, IReadOnlyList{PointGuide?}, double?, IReadOnlyList{string?})"/>,
/// plus <see cref="GenerateSpatial"/>, saving and loading. Inputs and outputs are plain data.
/// Not thread-safe: one thread (an inference worker or a training loop) uses an instance at a time.
/// </summary>
public sealed partial class VlaPolicy : IDisposable
{
    // The family's model and composition. Every verb hands over to it once, so the inference engine, the trainer and
    // the CLI serve either family through the same surface.
    private readonly PolicyModel family;
    private readonly PolicyTokenizer? tokenizer;
    private readonly Dictionary<string, NormalizationStats> normalization;

    private VlaPolicy(PolicyConfig config, PolicyTokenizer? tokenizer, string tokenizerJson, IReadOnlyDictionary<string, NormalizationStats> stats,
        nn.Module module, Device device, ScalarType dtype)
    {
        Config = config;
        this.tokenizer = tokenizer;
        TokenizerJson = tokenizerJson;
        Device = device;
        DType = dtype;
        family = PolicyModel.For(this, module);
        normalization = new Dictionary<string, NormalizationStats>(stats);
        foreach (var (name, s) in normalization) s.Validate(config, name);
    }

    /// <summary>The model's sizes and switches.</summary>
    public PolicyConfig Config { get; }
    /// <summary>Text and coordinate tokens of the <see cref="PolicyConfig.St4VlaFamily"/> family (an InternVLA-M1 policy has Qwen's tokenizer, see <see cref="TokenizerJson"/>).</summary>
    /// <exception cref="InvalidOperationException">An InternVLA-M1 policy.</exception>
    public PolicyTokenizer Tokenizer => tokenizer ?? throw new InvalidOperationException($"an {Config.Family} policy has no ST4VLA word tokenizer; its Qwen2 tokenizer is TokenizerJson");
    /// <summary>The tokenizer file as saved in the checkpoint (<c>tokenizer.json</c>), for either family.</summary>
    public string TokenizerJson { get; }
    /// <summary>Where the weights live.</summary>
    public Device Device { get; }
    /// <summary><see cref="Device"/> as the settings spell it: <c>cpu</c> or <c>cuda:N</c>.</summary>
    public string DeviceName => Device.type == DeviceType.CPU ? "cpu" : Device.ToString();
    /// <summary>float32, bfloat16 or float16.</summary>
    public ScalarType DType { get; }
    /// <summary><see cref="DType"/> as the settings spell it: <c>fp32</c>, <c>bf16</c> or <c>fp16</c>.</summary>
    public string DTypeName => DType switch
    {
        ScalarType.BFloat16 => "bf16",
        ScalarType.Float16 => "fp16",
        _ => "fp32",
    };
    /// <summary>Normalisation statistics per embodiment name.</summary>
    public IReadOnlyDictionary<string, NormalizationStats> Normalization => normalization;
    /// <summary>Number of parameters.</summary>
    public long ParameterCount => Module.parameters().Sum(p => p.numel());
    /// <summary>The ST4VLA family's composition, for tests and benchmarks that reach into its forward passes.</summary>
    internal St4VlaPolicyModel St4Vla => family as St4VlaPolicyModel ?? throw new InvalidOperationException($"an {Config.Family} policy has no ST4VLA model");
    internal St4VlaModel Model => St4Vla.Model;

    /// <summary>The InternVLA-M1 family's composition, for tests and benchmarks that reach into its forward passes.</summary>
    internal InternVlaM1PolicyModel InternVlaM1 => family as InternVlaM1PolicyModel ?? throw new InvalidOperationException($"an {Config.Family} policy has no InternVLA-M1 model");
    private nn.Module Module => family.Module;

    /// <summary>
    /// A freshly initialised policy. <paramref name="seed"/> fixes the initial weights;
    /// <paramref name="tokenizerJson"/> is required for configs with an <c>hf</c> tokenizer and for the InternVLA-M1
    /// family (Qwen's <c>tokenizer.json</c>).
    /// </summary>
    public static VlaPolicy Create(PolicyConfig config, IReadOnlyDictionary<string, NormalizationStats> normalization,
        long seed = 0, string device = "cpu", string dtype = "fp32", string? tokenizerJson = null)
    {
        config.Validate();
        var (dev, type) = ParseDeviceAndDtype(device, dtype);
        if (config.ModelFamily == PolicyFamily.InternVlaM1)
        {
            var qwenTokenizer = ReadQwenTokenizer(tokenizerJson ?? throw new ArgumentException("an internvla-m1 policy needs Qwen's tokenizer.json"));
            InternVlaM1 built;
            lock (InitLock)
            {
                random.manual_seed(seed);
                built = new InternVlaM1(config.ToInternVlaM1(), qwenTokenizer);
            }
            built.to(dev, type);
            return new VlaPolicy(config, null, tokenizerJson, normalization, built, dev, type);
        }
        var tokenizer = PolicyTokenizer.ForConfig(config, tokenizerJson);
        St4VlaModel model;
        lock (InitLock)
        {
            // The global generator is shared by the process; initialisation must not interleave with another's.
            random.manual_seed(seed);
            model = new St4VlaModel(config);
        }
        model.to(dev, type);
        return new VlaPolicy(config, tokenizer, tokenizer.Json, normalization, model, dev, type);
    }

    /// <summary>Qwen's tokenizer from a Hugging Face <c>tokenizer.json</c>.</summary>
    internal static InternVla.Text.Qwen2Tokenizer ReadQwenTokenizer(string json)
    {
        using var stream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json));
        return InternVla.Text.Qwen2Tokenizer.FromTokenizerJson(stream);
    }

    /// <summary>Adds or replaces an embodiment's statistics (e.g. before fine-tuning on a new robot).</summary>
    public void SetNormalization(string embodiment, NormalizationStats stats)
    {
        stats.Validate(Config, embodiment);
        normalization[embodiment] = stats;
        // The state is normalised with them before it joins the prefix (M1), so cached prefixes may be stale.
        WeightsChanged();
    }

    /// <summary>
    /// Parameters split into the VLM (ViT + decoder; InternVLA-M1: Qwen2.5-VL), the action expert (the DiT) and the rest
    /// (latent queries + bridge; InternVLA-M1: Q-Former, DINO and its projection, the state projection).
    /// </summary>
    public PolicyParameterGroups ParameterGroups() => family.ParameterGroups();

    /// <summary>All trainable parameters. Whoever writes into them outside <see cref="CreateOptimizer"/>'s optimizer calls <see cref="WeightsChanged"/> after.</summary>
    public IEnumerable<Parameter> Parameters() => Module.parameters();

    /// <summary>
    /// All trainable parameters with their checkpoint names (as in <c>model.safetensors</c>). Whoever writes into them
    /// outside <see cref="CreateOptimizer"/>'s optimizer calls <see cref="WeightsChanged"/> after.
    /// </summary>
    public IEnumerable<(string Name, Parameter Parameter)> NamedParameters() => Module.named_parameters();

    /// <summary>
    /// AdamW with one group per part; the defaults are the paper's post-training values
    /// (lr 1e-5 VLM, 1e-4 action expert, 5e-5 rest, β (0.9, 0.95), weight decay 1e-8). Its <c>step()</c> also calls
    /// <see cref="WeightsChanged"/>, so no session prefix computed with the old weights is reused; train with it
    /// rather than an optimizer built on <see cref="Parameters"/>.
    /// </summary>
    public optim.Optimizer CreateOptimizer(double vlmLr = 1e-5, double expertLr = 1e-4, double restLr = 5e-5, double weightDecay = 1e-8, double beta1 = 0.9, double beta2 = 0.95)
    {
        var groups = ParameterGroups();
        return new PolicyAdamW(this,
        [
            new AdamW.ParamGroup(groups.Vlm, new AdamW.Options { LearningRate = vlmLr }),
            new AdamW.ParamGroup(groups.ActionExpert, new AdamW.Options { LearningRate = expertLr }),
            new AdamW.ParamGroup(groups.Rest, new AdamW.Options { LearningRate = restLr }),
        ], restLr, beta1, beta2, weightDecay);
    }

    /// <summary>Frees the weights.</summary>
    public void Dispose()
    {
        Prefixes.Dispose();
        family.Dispose();
    }

    private static readonly object InitLock = new();

    internal static Device ParseDevice(string device) => device switch
    {
        "cpu" => CPU,
        _ when device.StartsWith("cuda", StringComparison.Ordinal) => cuda.is_available() ? torch.device(device) : throw new ArgumentException($"device '{device}' asked for but CUDA is not available"),
        _ => throw new ArgumentException($"device '{device}' is not cpu or cuda[:n]"),
    };

    /// <summary>Bytes per weight once loaded in <paramref name="dtype"/> (<c>fp32</c>: 4, <c>bf16</c>/<c>fp16</c>: 2).</summary>
    public static int BytesPerWeight(string dtype) => ParseDtype(dtype) == ScalarType.Float32 ? 4 : 2;

    internal static ScalarType ParseDtype(string dtype) => dtype.ToLowerInvariant() switch
    {
        "fp32" or "float32" => ScalarType.Float32,
        "bf16" or "bfloat16" => ScalarType.BFloat16,
        "fp16" or "float16" => ScalarType.Float16,
        _ => throw new ArgumentException($"dtype '{dtype}' is not fp32, bf16 or fp16"),
    };

    /// <summary>
    /// Throws when <paramref name="dtype"/> is unknown or cannot run on <paramref name="device"/>. float16 is for CUDA
    /// devices only: its range (±65504) relies on the GPU kernels' float32 accumulation, and libtorch's CPU half kernels
    /// are slow reference paths; bf16 is the half type for CPUs.
    /// </summary>
    /// <exception cref="ArgumentException">An unknown dtype, or fp16 on a device that is not <c>cuda[:n]</c>.</exception>
    public static void CheckDtypeFor(string device, string dtype)
    {
        if (ParseDtype(dtype) == ScalarType.Float16 && !device.StartsWith("cuda", StringComparison.Ordinal))
            throw new ArgumentException($"dtype 'fp16' needs a CUDA device (device is '{device}'); use bf16 for half precision on the CPU");
    }

    private static (Device Device, ScalarType DType) ParseDeviceAndDtype(string device, string dtype)
    {
        CheckDtypeFor(device, dtype);
        return (ParseDevice(device), ParseDtype(dtype));
    }
}
