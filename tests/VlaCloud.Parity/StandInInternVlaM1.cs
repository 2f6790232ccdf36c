using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using VlaCloud.Policy.InternVla;

namespace VlaCloud.Parity;

/// <summary>
/// A synthetic released InternVLA-M1 run: a stand-in config with the release's depths (36 Qwen layers, 32 vision blocks,
/// 12 DINO and DiT blocks, the Q-Former over hidden state 36) but tiny widths, so its checkpoint carries every name of
/// <c>keys.json</c> at small shapes, written with <see cref="TorchSave"/>.
/// </summary>
public static class StandInInternVlaM1
{
    /// <summary>keys.json's Qwen2.5-VL-3B config with every width shrunk and the tiny tokenizer's ids.</summary>
    public static JsonObject Qwen()
    {
        var keys = JsonNode.Parse(File.ReadAllText(Path.Combine(TinyInternVlaM1.FixtureFolder, "keys.json")))!;
        var qwen = keys["qwen_config"]!.DeepClone().AsObject();
        var vision = qwen["vision_config"]!.AsObject();
        (vision["hidden_size"], vision["num_heads"], vision["intermediate_size"], vision["out_hidden_size"]) = (32, 2, 32, 64);
        var tiny = TinyInternVlaM1.QwenConfigJson();
        foreach (var node in new[] { qwen, qwen["text_config"]!.AsObject() })
        {
            (node["hidden_size"], node["intermediate_size"], node["num_attention_heads"], node["num_key_value_heads"]) = (64, 64, 4, 2);
            node["rope_scaling"] = new JsonObject { ["type"] = "default", ["rope_type"] = "default", ["mrope_section"] = new JsonArray(2, 3, 3) };
            foreach (var key in new[] { "vocab_size", "image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id", "bos_token_id", "eos_token_id" })
                node[key] = tiny[key]!.DeepClone();
        }
        return qwen;
    }

    public const string Yaml = """
        framework:
          name: InternVLA-M1
          qwenvl:
            vl_hidden_dim: 64
          dino:
            dino_backbone: dinov2_vits14
            embed_dim: 32
            num_heads: 2
          layer_qformer:
            qformer_start_layer: 36
            qformer_end_layer: 37
            num_query_tokens: 8
            input_dim: 64
            ouptput_dim: 32
            grad_scale: 0.5
          action_model:
            action_model_type: DiT-B
            token_size: 32
            num_heads: 4
            action_dim: 7
            future_action_window_size: 15
            past_action_window_size: 0
        trainer:
          repeated_diffusion_steps: 4
        datasets:
          vla_data:
            image_size: [224, 224]
            CoT_prompt: "Your task is {instruction}. To identify the key objects for your task. Locate their bounding boxes in [x1,y1,x2,y2] format."
        """;

    public const string Statistics = """
        {"oxe_bridge": {"action": {"mean": [0,0,0,0,0,0,0.5], "std": [1,1,1,1,1,1,0.5], "max": [1,1,1,1,1,1,1], "min": [-1,-1,-1,-1,-1,-1,0],
          "q01": [-0.9,-0.9,-0.9,-0.9,-0.9,-0.9,0], "q99": [0.9,0.9,0.9,0.9,0.9,0.9,1], "mask": [true,true,true,true,true,true,false]},
          "num_transitions": 10, "num_trajectories": 2}}
        """;

    /// <summary>A run folder under <paramref name="root"/> (with its Qwen folder beside it) whose .pt holds <paramref name="tensors"/> (Qwen's in BF16 as released, the heads' in F32).</summary>
    public static (string Run, string Qwen) WriteRun(string root, IEnumerable<(string Name, long[] Shape)> tensors, Func<string, bool>? skip = null)
    {
        var run = Path.Combine(root, "run");
        var qwen = Path.Combine(root, "qwen");
        Directory.CreateDirectory(Path.Combine(run, "checkpoints"));
        Directory.CreateDirectory(qwen);
        File.WriteAllText(Path.Combine(run, "config.yaml"), Yaml);
        File.WriteAllText(Path.Combine(run, "dataset_statistics.json"), Statistics);
        File.WriteAllText(Path.Combine(qwen, "config.json"), Qwen().ToJsonString());
        File.WriteAllText(Path.Combine(qwen, "tokenizer.json"), TinyInternVlaM1.TokenizerJson());
        TorchSave.Write(Path.Combine(run, "checkpoints", "steps_20000_pytorch_model.pt"),
            tensors.Where(t => skip is null || !skip(t.Name)).Select(t => (t.Name, t.Shape, t.Name.StartsWith("qwen_vl_interface.", StringComparison.Ordinal))));
        File.WriteAllText(Path.Combine(run, "checkpoints", "steps_100_pytorch_model.pt"), "an older step, never read");
        return (run, qwen);
    }

    public static IReadOnlyList<(string Name, long[] Shape)> Tensors()
    {
        var config = Policy.PolicyConfig.ForInternVlaM1(Qwen(), YamlFramework()).ToInternVlaM1();
        var names = InternVlaM1Import.ExpectedTensors(config).Select(p => (p.Name, p.Shape)).ToList();
        var embed = names.Single(n => n.Name == "qwen_vl_interface.model.model.language_model.embed_tokens.weight");
        // The state dict lists the tied head too.
        names.Add(("qwen_vl_interface.model.lm_head.weight", embed.Shape));
        return names;
    }

    public static JsonObject YamlFramework() => new()
    {
        ["dino"] = new JsonObject { ["dino_backbone"] = "dinov2_vits14", ["embed_dim"] = 32, ["num_heads"] = 2 },
        ["layer_qformer"] = new JsonObject { ["qformer_start_layer"] = 36, ["qformer_end_layer"] = 37, ["num_query_tokens"] = 8, ["input_dim"] = 64, ["ouptput_dim"] = 32, ["grad_scale"] = 0.5 },
        ["action_model"] = new JsonObject { ["action_model_type"] = "DiT-B", ["token_size"] = 32, ["num_heads"] = 4, ["action_dim"] = 7, ["future_action_window_size"] = 15, ["past_action_window_size"] = 0 },
    };
}

/// <summary>
/// Writes a <c>torch.save</c> zip of a state dict the way PyTorch does (protocol 2 pickle, an <c>OrderedDict</c> of
/// <c>_rebuild_tensor_v2</c> calls on persistent storages, one storage file per tensor), each tensor filled with a
/// constant so a test can check it arrived.
/// </summary>
public static class TorchSave
{
    public static float Value(int index, bool bf16)
    {
        var v = index / 1000f;
        return bf16 ? BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(v) & unchecked((int)0xFFFF0000)) : v;
    }

    public static void Write(string path, IEnumerable<(string Name, long[] Shape, bool Bf16)> tensors)
    {
        using var file = File.Create(path);
        using var zip = new ZipArchive(file, ZipArchiveMode.Create);
        var pickle = new MemoryStream();
        var w = new BinaryWriter(pickle, Encoding.UTF8);
        void Op(char c) => w.Write((byte)c);
        void Global(string module, string name) { Op('c'); w.Write(Encoding.ASCII.GetBytes($"{module}\n{name}\n")); }
        void Text(string s) { var b = Encoding.UTF8.GetBytes(s); Op('X'); w.Write(b.Length); w.Write(b); }
        void Int(long v) { Op('J'); w.Write(checked((int)v)); }
        void Tuple(IEnumerable<long> values) { Op('('); foreach (var v in values) Int(v); Op('t'); }

        w.Write((byte)0x80); w.Write((byte)2);
        Global("collections", "OrderedDict"); Op(')'); Op('R');
        Op('(');
        var index = 0;
        foreach (var (name, shape, bf16) in tensors)
        {
            var count = shape.Aggregate(1L, (a, b) => a * b);
            var key = index.ToString(System.Globalization.CultureInfo.InvariantCulture);
            Text(name);
            Global("torch._utils", "_rebuild_tensor_v2");
            Op('(');
            Op('('); Text("storage"); Global("torch", bf16 ? "BFloat16Storage" : "FloatStorage"); Text(key); Text("cpu"); Int(count); Op('t'); Op('Q');
            Int(0);
            Tuple(shape);
            var stride = new long[shape.Length];
            for (long i = shape.Length - 1, s = 1; i >= 0; s *= shape[i], i--) stride[i] = s;
            Tuple(stride);
            w.Write((byte)0x89);
            Global("collections", "OrderedDict"); Op(')'); Op('R');
            Op('t'); Op('R');

            using (var data = new BinaryWriter(zip.CreateEntry($"archive/data/{key}", CompressionLevel.NoCompression).Open()))
            {
                var value = Value(index, bf16);
                var bits = (ushort)(BitConverter.SingleToInt32Bits(value) >> 16);
                for (long i = 0; i < count; i++)
                {
                    if (bf16) data.Write(bits);
                    else data.Write(value);
                }
            }
            index++;
        }
        Op('u'); Op('.');
        w.Flush();
        using (var entry = zip.CreateEntry("archive/data.pkl", CompressionLevel.NoCompression).Open()) entry.Write(pickle.ToArray());
        using (var version = new StreamWriter(zip.CreateEntry("archive/version").Open())) version.Write("3\n");
    }
}
