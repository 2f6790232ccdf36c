using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using VlaCloud.Policy.Checkpoint;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Tests;

public sealed class SafetensorsFileTests
{
    [Fact]
    public void The_repository_copy_of_the_golden_fixtures_is_byte_identical_to_the_shared_originals_where_those_exist()
    {
        var shared = Path.GetFullPath(Path.Combine(GoldenFixtures.RepositoryRoot, "..", "shared", "fixtures", "internvla-m1"));
        var copy = Path.Combine(GoldenFixtures.RepositoryRoot, "tests", "fixtures", "internvla-m1");
        Assert.True(File.Exists(Path.Combine(copy, "keys.json")), "the repository carries the fixtures");
        if (!Directory.Exists(shared)) return; // a clean clone elsewhere has only the copy, which this test checked when it was made
        var names = Directory.GetFiles(shared).Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(names, Directory.GetFiles(copy).Select(Path.GetFileName).Order().ToArray());
        foreach (var name in names)
            Assert.True(SHA256.HashData(File.ReadAllBytes(Path.Combine(shared, name!))).AsSpan()
                .SequenceEqual(SHA256.HashData(File.ReadAllBytes(Path.Combine(copy, name!)))), $"{name} differs from the shared fixture");
    }

    [Fact]
    public void Tensors_of_every_fixture_dtype_are_read_with_their_stored_type_and_values()
    {
        using var io = SafetensorsFile.Open(GoldenFixtures.File("qwen25vl_tiny.io.safetensors"));
        using var image = io.Read("image0_uint8_hwc");
        Assert.Equal(ScalarType.Byte, image.dtype);
        Assert.Equal(new long[] { 60, 90, 3 }, image.shape);
        using var ids = io.Read("input_ids");
        Assert.Equal(ScalarType.Int64, ids.dtype);
        Assert.Equal(2, ids.shape[0]);
        using var mask = io.Read("attention_mask");
        // The batch is left padded: the last column is a real token in every row.
        Assert.All(mask[.., -1].data<long>().ToArray(), v => Assert.Equal(1L, v));

        using var dit = SafetensorsFile.Open(GoldenFixtures.File("dit_tiny.io.safetensors"));
        using var betas = dit.Read("base.betas");
        Assert.Equal(ScalarType.Float64, betas.dtype);
        Assert.All(betas.data<double>().ToArray(), b => Assert.InRange(b, 0.0, 0.999));
    }

    [Theory]
    [InlineData("[-1, 4]", "invalid shape")]
    [InlineData("[4611686018427387904, 4611686018427387904]", "overflows")]
    [InlineData("[3]", "data offsets")]
    public void A_hostile_header_is_refused_before_anything_is_sized_from_it(string shape, string message)
    {
        var path = Path.GetTempFileName();
        try
        {
            var header = Encoding.UTF8.GetBytes($$$"""{"w":{"dtype":"F32","shape":{{{shape}}},"data_offsets":[0,8]}}""");
            using (var f = File.Create(path))
            {
                var len = new byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
                f.Write(len);
                f.Write(header);
                f.Write(new byte[8]);
            }
            var error = Assert.Throws<CheckpointException>(() => SafetensorsFile.Open(path));
            Assert.Contains(message, error.Message);
        }
        finally { File.Delete(path); }
    }
}
