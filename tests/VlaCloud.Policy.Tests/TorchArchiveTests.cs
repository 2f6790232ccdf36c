using VlaCloud.Policy.Checkpoint;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Tests;

/// <summary>
/// <see cref="TorchArchive"/> on files written by PyTorch's own torch.save (tests/fixtures/torch-pickle, made by
/// make_pickles.py there with Debian's python3-torch).
/// </summary>
public sealed class TorchArchiveTests
{
    private static string File(string name) => Path.Combine(GoldenFixtures.RepositoryRoot, "tests", "fixtures", "torch-pickle", name);

    private static float[] Floats(Tensor t) => t.to(float32).data<float>().ToArray();

    [Fact]
    public void A_state_dict_reads_every_tensor_with_its_dtype_shape_and_values_including_views_of_shared_storages()
    {
        using var archive = TorchArchive.Open(File("state_dict.pt"));
        Assert.Equal(["a.weight", "a.bias", "b.weight", "b.steps", "tied.weight", "transposed", "slice"], archive.Tensors.Keys);
        var expected = Enumerable.Range(0, 12).Select(i => i * 0.5f).ToArray();

        using var weight = archive.Read("a.weight");
        Assert.Equal(new long[] { 3, 4 }, weight.shape);
        Assert.Equal(expected, Floats(weight));
        using var tied = archive.Read("tied.weight");
        Assert.Equal(expected, Floats(tied));
        using var transposed = archive.Read("transposed");
        Assert.Equal(new long[] { 4, 3 }, transposed.shape);
        Assert.Equal(Enumerable.Range(0, 12).Select(i => (i % 3 * 4 + i / 3) * 0.5f), Floats(transposed));
        using var slice = archive.Read("slice");
        Assert.Equal([2f, 3f, 4f], Floats(slice));

        using var bias = archive.Read("a.bias");
        Assert.Equal([1f, -2f, 3f], Floats(bias));
        using var bf16 = archive.Read("b.weight");
        Assert.Equal(ScalarType.BFloat16, bf16.dtype);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => i / 4f), Floats(bf16));
        using var steps = archive.Read("b.steps");
        Assert.Equal(ScalarType.Int64, steps.dtype);
        Assert.Equal(7L, steps.item<long>());
    }

    [Fact]
    public void Nested_dicts_are_flattened_with_dots_and_their_plain_values_are_skipped()
    {
        using var archive = TorchArchive.Open(File("nested.pt"));
        Assert.Contains("model.a.weight", archive.Tensors.Keys);
        Assert.Equal(7, archive.Tensors.Count);
    }

    [Fact]
    public void A_pickled_function_is_refused_naming_it_before_anything_is_called()
    {
        var error = Assert.Throws<CheckpointException>(() => TorchArchive.Open(File("function_global.pt")));
        Assert.Contains("posix.system", error.Message);
        Assert.Contains("refused", error.Message);
    }

    [Fact]
    public void A_whole_pickled_module_is_refused_because_its_class_is_code()
    {
        var error = Assert.Throws<CheckpointException>(() => TorchArchive.Open(File("whole_module.pt")));
        Assert.Contains("torch.nn.modules.linear", error.Message);
    }

    [Fact]
    public void The_legacy_non_zip_format_is_refused_with_a_way_out()
    {
        var error = Assert.Throws<CheckpointException>(() => TorchArchive.Open(File("legacy_format.pt")));
        Assert.Contains("re-save", error.Message);
    }

    [Fact]
    public void A_tensor_that_reaches_past_its_storage_is_refused_when_the_archive_is_opened()
    {
        // Rewrite the state dict's storage 0 (a.weight's 12 floats) to hold only 8 bytes.
        var path = Path.GetTempFileName();
        try
        {
            using (var source = System.IO.Compression.ZipFile.OpenRead(File("state_dict.pt")))
            using (var target = System.IO.Compression.ZipFile.Open(path, System.IO.Compression.ZipArchiveMode.Update))
            {
                foreach (var entry in target.Entries.ToList()) entry.Delete();
                foreach (var entry in source.Entries)
                {
                    using var from = entry.Open();
                    using var to = target.CreateEntry(entry.FullName).Open();
                    if (entry.FullName.EndsWith("data/0", StringComparison.Ordinal)) to.Write(new byte[8]);
                    else from.CopyTo(to);
                }
            }
            var error = Assert.Throws<CheckpointException>(() => TorchArchive.Open(path));
            Assert.Contains("storage '0'", error.Message);
        }
        finally { System.IO.File.Delete(path); }
    }
}
