using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace VlaCloud.Policy.Checkpoint;

/// <summary>One tensor's entry in a safetensors header.</summary>
internal sealed record SafetensorEntry(string Name, string Dtype, long[] Shape, long Begin, long End);

/// <summary>
/// The safetensors file format, read and written here: an 8-byte little-endian header length, a JSON
/// header <c>{name: {dtype, shape, data_offsets}}</c> padded with spaces to 8 bytes, then the raw
/// little-endian data. <see cref="Write"/> writes F32 arrays and <see cref="SafetensorsFile.Write"/> tensors of any
/// dtype; headers of every standard dtype are read (<see cref="SafetensorsFile"/> reads any of them into a tensor),
/// <see cref="ReadFloats"/> reads F32, BF16 and F16.
/// </summary>
internal static class Safetensors
{
    public static void Write(string path, IEnumerable<(string Name, long[] Shape, float[] Data)> tensors)
    {
        var list = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        foreach (var (name, shape, data) in list)
            if (shape.Aggregate(1L, (a, b) => a * b) != data.Length) throw new ArgumentException($"tensor '{name}': shape and data length disagree");
        WriteFile(path, [.. list.Select(t => (t.Name, "F32", t.Shape, 4L * t.Data.Length))], null,
            (i, file) => file.Write(MemoryMarshal.AsBytes(list[i].Data.AsSpan())));
    }

    /// <summary>
    /// Writes a file: the header of <paramref name="entries"/> (in the given order, which is also the data order), then
    /// each entry's bytes through <paramref name="writeData"/>, so no more than one tensor's data is in hand at a time.
    /// </summary>
    public static void WriteFile(string path, IReadOnlyList<(string Name, string Dtype, long[] Shape, long Bytes)> entries,
        IReadOnlyDictionary<string, string>? metadata, Action<int, FileStream> writeData)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
            header["__metadata__"] = new JsonObject(metadata.Select(m => KeyValuePair.Create(m.Key, (JsonNode?)m.Value)));
        long offset = 0;
        foreach (var (name, dtype, shape, bytes) in entries)
        {
            header[name] = new JsonObject
            {
                ["dtype"] = dtype,
                ["shape"] = new JsonArray(shape.Select(s => (JsonNode)s!).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var padded = (json.Length + 7) / 8 * 8;
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
        file.Write(len);
        file.Write(json);
        for (var i = json.Length; i < padded; i++) file.WriteByte((byte)' ');
        for (var i = 0; i < entries.Count; i++)
        {
            var before = file.Position;
            writeData(i, file);
            if (file.Position - before != entries[i].Bytes) throw new InvalidOperationException($"tensor '{entries[i].Name}': wrote {file.Position - before} bytes, its header says {entries[i].Bytes}");
        }
    }

    /// <summary>
    /// Largest header read. Real headers take ~150 bytes per tensor (a 4 B model's, well under 1 MB); the format's own
    /// bound of 100 MB would let a hostile file make a JSON tree of gigabytes before anything else is checked.
    /// </summary>
    public const int MaxHeaderBytes = 16 << 20;

    /// <summary>Reads and checks the header of a file: offsets contiguous and inside the file.</summary>
    public static (Dictionary<string, SafetensorEntry> Entries, long DataStart) ReadHeader(FileStream file, string fileName) =>
        ReadHeader(file, file.Length, fileName);

    /// <summary>
    /// Reads and checks the header at the start of <paramref name="stream"/>, a file of <paramref name="length"/> bytes
    /// (a tar entry, say): offsets contiguous and inside the file. Only the header is read.
    /// </summary>
    public static (Dictionary<string, SafetensorEntry> Entries, long DataStart) ReadHeader(Stream stream, long length, string fileName)
    {
        Span<byte> len = stackalloc byte[8];
        if (stream.ReadAtLeast(len, 8, throwOnEndOfStream: false) != 8) throw new CheckpointException($"{fileName}: too short to be a safetensors file");
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (headerLength == 0 || headerLength > MaxHeaderBytes || (long)headerLength > length - 8)
            throw new CheckpointException($"{fileName}: header length {headerLength} is not valid (at most {MaxHeaderBytes} bytes, inside the file)");
        var headerBytes = new byte[headerLength];
        try
        {
            stream.ReadExactly(headerBytes);
        }
        catch (EndOfStreamException)
        {
            throw new CheckpointException($"{fileName}: the file ends inside its header");
        }
        JsonObject header;
        try { header = JsonNode.Parse(headerBytes) as JsonObject ?? throw new JsonException("not an object"); }
        catch (JsonException e) { throw new CheckpointException($"{fileName}: header is not valid JSON ({e.Message})"); }
        var dataStart = 8 + (long)headerLength;
        var entries = new Dictionary<string, SafetensorEntry>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__") continue;
            try
            {
                var dtype = (string)node!["dtype"]!;
                var shape = node["shape"]!.AsArray().Select(n => (long)n!).ToArray();
                var offsets = node["data_offsets"]!.AsArray().Select(n => (long)n!).ToArray();
                var elementSize = ElementSize(dtype) ?? throw new CheckpointException($"{fileName}: tensor '{name}' has unsupported dtype {dtype}");
                // A hostile header may declare any shape: negative or overflowing sizes are refused before anything is sized from them.
                if (shape.Length > 16 || shape.Any(d => d < 0)) throw new CheckpointException($"{fileName}: tensor '{name}' has an invalid shape");
                var bytes = checked(shape.Aggregate(1L, (a, b) => checked(a * b)) * elementSize);
                if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] - offsets[0] != bytes || offsets[1] > length - dataStart)
                    throw new CheckpointException($"{fileName}: tensor '{name}' has data offsets that do not fit its shape or the file");
                entries[name] = new SafetensorEntry(name, dtype, shape, offsets[0], offsets[1]);
            }
            catch (OverflowException)
            {
                throw new CheckpointException($"{fileName}: tensor '{name}' has a shape whose size overflows");
            }
            catch (Exception e) when (e is InvalidOperationException or NullReferenceException or FormatException or ArgumentException)
            {
                throw new CheckpointException($"{fileName}: tensor '{name}' has a malformed header entry");
            }
        }
        return (entries, dataStart);
    }

    /// <summary>Bytes per element of a safetensors dtype, or null for a dtype this reader does not know.</summary>
    public static int? ElementSize(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "BF16" or "F16" or "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" => 1,
        _ => null,
    };

    /// <summary>Reads one tensor's data as float32.</summary>
    public static float[] ReadFloats(FileStream file, long dataStart, SafetensorEntry e)
    {
        var bytes = new byte[e.End - e.Begin];
        file.Position = dataStart + e.Begin;
        file.ReadExactly(bytes);
        switch (e.Dtype)
        {
            case "F32":
                return MemoryMarshal.Cast<byte, float>(bytes).ToArray();
            case "BF16":
            {
                var halves = MemoryMarshal.Cast<byte, ushort>(bytes);
                var result = new float[halves.Length];
                for (var i = 0; i < halves.Length; i++) result[i] = BitConverter.Int32BitsToSingle(halves[i] << 16);
                return result;
            }
            case "F16":
            {
                var halves = MemoryMarshal.Cast<byte, Half>(bytes);
                var result = new float[halves.Length];
                for (var i = 0; i < halves.Length; i++) result[i] = (float)halves[i];
                return result;
            }
            default:
                throw new CheckpointException($"tensor '{e.Name}' is {e.Dtype}, not a floating-point weight");
        }
    }
}
