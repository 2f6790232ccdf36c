using System.Text.Json.Nodes;
using VlaCloud.Policy.InternVla.Heads;

namespace VlaCloud.Parity;

/// <summary>
/// Reads the heads' fixture configs (<c>dino_tiny</c>, <c>qformer_tiny</c>, <c>dit_tiny</c>) of a fixture folder into the
/// model's config records: every size comes from the folder, and a setting the model does not build (registers, a
/// SwiGLU FFN, learned sigmas, stochastic DDIM, clipping) is refused rather than ignored.
/// </summary>
public static class HeadsFixtures
{
    /// <summary>The DINOv2 body's config (the generator passes <c>DinoVisionTransformer</c>'s keyword arguments).</summary>
    public static DinoConfig Dino(string folder)
    {
        var kw = Json(folder, "dino_tiny.config.json")["DinoVisionTransformer"] ?? throw new InvalidDataException("dino_tiny.config.json has no DinoVisionTransformer");
        Require(kw, "ffn_layer", "mlp");
        Require(kw, "num_register_tokens", 0);
        Require(kw, "block_chunks", 0);
        return new DinoConfig
        {
            ImageSize = Int(kw, "img_size"),
            PatchSize = Int(kw, "patch_size"),
            EmbedDim = Int(kw, "embed_dim"),
            Depth = Int(kw, "depth"),
            NumHeads = Int(kw, "num_heads"),
            MlpRatio = kw["mlp_ratio"]!.GetValue<double>(),
            InitValues = kw["init_values"]?.GetValue<double>(),
            InterpolateOffset = kw["interpolate_offset"]!.GetValue<double>(),
            InterpolateAntialias = kw["interpolate_antialias"]!.GetValue<bool>(),
        };
    }

    /// <summary>The Q-Former's config: upstream's <c>framework.layer_qformer</c> plus the factory's heads, MLP ratio and dropout.</summary>
    public static QFormerConfig QFormer(string folder)
    {
        var json = Json(folder, "qformer_tiny.config.json");
        return QFormerConfig.FromUpstream(json["framework"]!["layer_qformer"]!) with
        {
            NumHeads = Int(json, "num_heads"),
            MlpRatio = json["mlp_ratio"]!.GetValue<double>(),
            Dropout = json["dropout"]!.GetValue<double>(),
        };
    }

    /// <summary>The action model's config: <c>ActionModel</c>'s and the registered DiT size's keyword arguments, the repeats and the DDIM settings.</summary>
    public static ActionModelConfig Dit(string folder)
    {
        var json = Json(folder, "dit_tiny.config.json");
        var am = json["ActionModel"] ?? throw new InvalidDataException("dit_tiny.config.json has no ActionModel");
        var type = am["model_type"]!.GetValue<string>();
        var dit = json[type] ?? throw new InvalidDataException($"dit_tiny.config.json has no sizes for {type}");
        var ddim = json["ddim"] ?? throw new InvalidDataException("dit_tiny.config.json has no ddim");
        Require(am, "past_action_window_size", 0);
        Require(dit, "learn_sigma", false);
        Require(ddim, "eta", 0.0);
        Require(ddim, "clip_denoised", false);
        return new ActionModelConfig
        {
            ModelType = type,
            Depth = Int(dit, "depth"),
            TokenSize = Int(dit, "token_size"),
            NumHeads = Int(dit, "num_heads"),
            MlpRatio = dit["mlp_ratio"]!.GetValue<double>(),
            ConditionTokens = Int(dit, "n_conditon_token"),
            ClassDropoutProb = dit["class_dropout_prob"]!.GetValue<double>(),
            ActionDim = Int(am, "in_channels"),
            FutureActionWindowSize = Int(am, "future_action_window_size"),
            DiffusionSteps = Int(am, "diffusion_steps"),
            NoiseSchedule = am["noise_schedule"]!.GetValue<string>(),
            RepeatedDiffusionSteps = Int(json, "repeated_diffusion_steps"),
            DdimSteps = Int(ddim, "num_ddim_steps"),
            CfgScale = ddim["cfg_scale"]!.GetValue<double>(),
        };
    }

    /// <summary>The heads' entries of <c>keys.json</c> (<c>layer_qformer.*</c>, <c>action_model.*</c>, <c>dino_encoder.*</c>, <c>dino_pro.*</c>), in file order.</summary>
    public static IReadOnlyList<(ParameterShape Parameter, string Dtype)> Keys(string folder)
    {
        var state = Json(folder, "keys.json")["internvla_m1_state_dict"]!.AsObject();
        return [.. state.Where(e => !e.Key.StartsWith("qwen_vl_interface.", StringComparison.Ordinal)).Select(e =>
            (new ParameterShape(e.Key, [.. e.Value!["shape"]!.AsArray().Select(d => d!.GetValue<long>())]), e.Value!["dtype"]!.GetValue<string>()))];
    }

    /// <summary>The VLM width of the full config <c>keys.json</c> was built from (its <c>qwen_config.hidden_size</c>).</summary>
    public static int KeysVlmHiddenSize(string folder) => Int(Json(folder, "keys.json")["qwen_config"]!, "hidden_size");

    private static JsonNode Json(string folder, string file) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(folder, file))) ?? throw new InvalidDataException($"{file} is empty");

    private static int Int(JsonNode node, string key) =>
        node[key]?.GetValue<int>() ?? throw new InvalidDataException($"the fixture config has no '{key}'");

    private static void Require<T>(JsonNode node, string key, T expected) where T : notnull
    {
        var value = node[key];
        if (value is null || !value.GetValue<T>().Equals(expected))
            throw new NotSupportedException($"the fixture config sets {key} = {node[key]?.ToJsonString() ?? "nothing"}; the model is built for {expected}");
    }
}
