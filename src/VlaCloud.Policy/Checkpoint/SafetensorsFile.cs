using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Checkpoint;

/// <summary>
/// One safetensors file opened for reading: the header is read and bounded when the file is opened
/// (<see cref="Safetensors.ReadHeader(FileStream, string)"/>), and each tensor is read on demand, in its stored dtype, on the CPU.
/// Used for Hugging Face checkpoints (any dtype) and for the golden fixtures (F64, I64, U8 as well as floats).
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    private readonly FileStream file;
    private readonly Dictionary<string, SafetensorEntry> entries;
    private readonly long dataStart;

    private SafetensorsFile(FileStream file, Dictionary<string, SafetensorEntry> entries, long dataStart, IReadOnlyDictionary<string, string> metadata)
    {
        this.file = file;
        this.entries = entries;
        this.dataStart = dataStart;
        Metadata = metadata;
    }

    /// <summary>The file's path.</summary>
    public string Path => file.Name;

    /// <summary>Tensor names in the file, sorted.</summary>
    public IReadOnlyList<string> Names => [.. entries.Keys.Order(StringComparer.Ordinal)];

    /// <summary>The header's <c>__metadata__</c> strings (empty when there are none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Opens a file and checks its header; throws <see cref="CheckpointException"/> naming what is wrong.</summary>
    public static SafetensorsFile Open(string path)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            var name = System.IO.Path.GetFileName(path);
            var (entries, dataStart) = Safetensors.ReadHeader(file, name);
            return new SafetensorsFile(file, entries, dataStart, ReadMetadata(file, dataStart));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Whether the file holds a tensor of this name.</summary>
    public bool Contains(string name) => entries.ContainsKey(name);

    /// <summary>The stored shape of a tensor.</summary>
    public long[] Shape(string name) => Entry(name).Shape;

    /// <summary>The stored dtype of a tensor, in safetensors' spelling (<c>F32</c>, <c>BF16</c>, <c>I64</c>, …).</summary>
    public string DType(string name) => Entry(name).Dtype;

    /// <summary>Reads a tensor in its stored dtype onto the CPU. The caller owns (and disposes) the result.</summary>
    public Tensor Read(string name)
    {
        var entry = Entry(name);
        var type = ScalarTypeOf(entry.Dtype) ?? throw new CheckpointException($"{System.IO.Path.GetFileName(Path)}: tensor '{name}' has dtype {entry.Dtype}, which libtorch has no type for");
        var result = empty(entry.Shape, type, CPU);
        try
        {
            if (entry.End > entry.Begin)
            {
                file.Position = dataStart + entry.Begin;
                file.ReadExactly(result.bytes);
            }
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>Reads a tensor and converts it to float32 (for comparisons and float weights).</summary>
    public Tensor ReadFloat32(string name)
    {
        using var stored = Read(name);
        return stored.to(float32);
    }

    /// <summary>
    /// Writes tensors of any dtype libtorch and safetensors share, sorted by name (the order of Python's
    /// <c>safetensors</c>), with an optional <c>__metadata__</c> (e.g. <c>{"format": "pt"}</c>). With
    /// <paramref name="dtype"/>, each tensor is converted as it is written, so no converted copy of the whole set exists.
    /// </summary>
    public static void Write(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null, ScalarType? dtype = null)
    {
        var list = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        var entries = list.Select(t =>
        {
            var type = dtype ?? t.Tensor.dtype;
            var name = DTypeOf(type) ?? throw new ArgumentException($"tensor '{t.Name}' would be {type}, which safetensors has no name for");
            return (t.Name, name, t.Tensor.shape, t.Tensor.numel() * Safetensors.ElementSize(name)!.Value);
        }).ToList();
        Safetensors.WriteFile(path, entries, metadata, (i, file) =>
        {
            using var scope = NewDisposeScope();
            var values = list[i].Tensor.detach().cpu();
            file.Write(values.to(dtype ?? values.dtype).contiguous().bytes);
        });
    }

    /// <summary>The safetensors name of a libtorch type, or null where safetensors has none.</summary>
    public static string? DTypeOf(ScalarType type) => type switch
    {
        ScalarType.Float64 => "F64",
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Int16 => "I16",
        ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8",
        ScalarType.Bool => "BOOL",
        _ => null,
    };

    /// <summary>The libtorch type of a safetensors dtype, or null where libtorch has none.</summary>
    public static ScalarType? ScalarTypeOf(string dtype) => dtype switch
    {
        "F64" => ScalarType.Float64,
        "F32" => ScalarType.Float32,
        "F16" => ScalarType.Float16,
        "BF16" => ScalarType.BFloat16,
        "I64" => ScalarType.Int64,
        "I32" => ScalarType.Int32,
        "I16" => ScalarType.Int16,
        "I8" => ScalarType.Int8,
        "U8" => ScalarType.Byte,
        "BOOL" => ScalarType.Bool,
        _ => null,
    };

    /// <summary>Closes the file.</summary>
    public void Dispose() => file.Dispose();

    private SafetensorEntry Entry(string name) =>
        entries.TryGetValue(name, out var entry) ? entry : throw new CheckpointException($"{System.IO.Path.GetFileName(Path)} has no tensor '{name}'");

    private static Dictionary<string, string> ReadMetadata(FileStream file, long dataStart)
    {
        // ReadHeader has already checked that the header parses and is bounded; this reads its one optional object again.
        file.Position = 8;
        var bytes = new byte[dataStart - 8];
        file.ReadExactly(bytes);
        var result = new Dictionary<string, string>();
        if (JsonNode.Parse(bytes) is JsonObject header && header["__metadata__"] is JsonObject metadata)
            foreach (var (key, value) in metadata)
                if (value is JsonValue v && v.TryGetValue<string>(out var text)) result[key] = text;
        return result;
    }
}
