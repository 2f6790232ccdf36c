using static TorchSharp.torch;

namespace VlaCloud.Policy.Tests;

/// <summary>
/// The half-precision settings and the host-to-device upload (issue 23, GPU readiness). No CUDA device exists on the
/// test machines, so what runs here is the CPU side of each path: fp16 is refused off CUDA with a message that names the
/// alternative, and the upload is the plain conversion it replaced.
/// </summary>
public sealed class PrecisionTests
{
    [Theory]
    [InlineData("fp32", 4)]
    [InlineData("bf16", 2)]
    [InlineData("fp16", 2)]
    public void Bytes_per_weight_follow_the_dtype(string dtype, int bytes) => Assert.Equal(bytes, VlaPolicy.BytesPerWeight(dtype));

    [Fact]
    public void Fp16_is_refused_on_the_cpu_and_the_message_names_bf16()
    {
        var error = Assert.Throws<ArgumentException>(() => VlaPolicy.Create(PolicyConfig.Tiny, TestData.Stats(), dtype: "fp16"));
        Assert.Contains("CUDA", error.Message);
        Assert.Contains("bf16", error.Message);
        VlaPolicy.CheckDtypeFor("cuda:0", "fp16");
        VlaPolicy.CheckDtypeFor("cpu", "bf16");
        Assert.Contains("fp32, bf16 or fp16", Assert.Throws<ArgumentException>(() => VlaPolicy.CheckDtypeFor("cpu", "int8")).Message);
    }

    [Theory]
    [InlineData("fp32")]
    [InlineData("bf16")]
    public void A_policy_spells_its_dtype_and_device_as_the_settings_do(string dtype)
    {
        using var policy = VlaPolicy.Create(PolicyConfig.Tiny, TestData.Stats(), dtype: dtype);
        Assert.Equal(dtype, policy.DTypeName);
        Assert.Equal("cpu", policy.DeviceName);
    }

    [Fact]
    public void On_the_cpu_the_upload_is_the_conversion_alone()
    {
        using var host = tensor(new float[] { 0.5f, -1.25f, 3f, 1e-3f }, [2, 2]);
        using var same = HostUpload.ToDevice(host, CPU);
        Assert.Equal(float32, same.dtype);
        Assert.False(same.is_pinned());
        Assert.Equal(host.data<float>().ToArray(), same.data<float>().ToArray());

        using var half = HostUpload.ToDevice(host, CPU, bfloat16);
        Assert.Equal(bfloat16, half.dtype);
        using var expected = host.to(bfloat16).to(float32);
        using var widened = half.to(float32);
        Assert.Equal(expected.data<float>().ToArray(), widened.data<float>().ToArray());

        using var ids = HostUpload.ToDevice(tensor(new long[] { 1, 2, 3 }), CPU, int64);
        Assert.Equal(new long[] { 1, 2, 3 }, ids.data<long>().ToArray());
    }
}
