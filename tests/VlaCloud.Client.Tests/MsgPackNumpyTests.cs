using System.Text;
using VlaCloud.Contracts.Wire;

namespace VlaCloud.Client.Tests;

/// <summary>
/// The codec against bytes written by the reference Python msgpack + numpy in openpi's msgpack-numpy
/// format (Fixtures/openpi/generate.py): decoding must read them, encoding must reproduce them exactly.
/// </summary>
public sealed class MsgPackNumpyTests
{
    private static byte[] Fixture(string name) => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", "openpi", name));

    private static Dictionary<object, object?> DecodeFixture(string name) =>
        (Dictionary<object, object?>)NumpyArray.FromWireTree(MsgPack.Deserialize(Fixture(name)))!;

    [Fact]
    public void A_droid_observation_decodes_to_its_images_state_and_prompt()
    {
        var observation = DecodeFixture("droid_observation.msgpack");

        var image = (NumpyArray)observation["observation/exterior_image_1_left"]!;
        Assert.Equal("|u1", image.Dtype);
        Assert.Equal([4, 4, 3], image.Shape);
        Assert.Equal(Enumerable.Range(0, 48).Select(i => (byte)i), image.ToImageBytes());
        Assert.All(((NumpyArray)observation["observation/wrist_image_left"]!).ToImageBytes(), b => Assert.Equal(200, b));

        var joints = (NumpyArray)observation["observation/joint_position"]!;
        Assert.Equal("<f8", joints.Dtype);
        Assert.Equal(new[] { -1f, -2f / 3, -1f / 3, 0f, 1f / 3, 2f / 3, 1f }, joints.ToFloats(), new FloatTolerance(1e-6f));
        Assert.Equal([0.25f], ((NumpyArray)observation["observation/gripper_position"]!).ToFloats());
        Assert.Equal("pick up the cup", observation["prompt"]);
    }

    [Fact]
    public void An_action_response_encodes_to_exactly_the_bytes_python_writes()
    {
        var actions = new float[10, 8];
        for (var i = 0; i < 80; i++) actions[i / 8, i % 8] = i / 10f;
        var response = new Dictionary<string, object?>
        {
            ["actions"] = actions,
            ["policy_timing"] = new Dictionary<string, object?> { ["infer_ms"] = 12.5 },
            ["server_timing"] = new Dictionary<string, object?> { ["infer_ms"] = 13.25, ["prev_total_ms"] = 40.0 },
        };
        Assert.Equal(Fixture("actions_response.msgpack"), MsgPack.Serialize(NumpyArray.ToWireTree(response)));
    }

    [Fact]
    public void Metadata_encodes_to_exactly_the_bytes_python_writes()
    {
        var metadata = new Dictionary<string, object?>
        {
            ["checkpoint"] = "sim-demo@v1", ["action_dim"] = 4, ["action_horizon"] = 8, ["cameras"] = new[] { "front", "wrist" },
        };
        Assert.Equal(Fixture("metadata.msgpack"), MsgPack.Serialize(metadata));
    }

    [Fact]
    public void Every_scalar_and_container_kind_decodes_and_reencodes_to_the_same_bytes()
    {
        var bytes = Fixture("variety.msgpack");
        var raw = (Dictionary<object, object?>)MsgPack.Deserialize(bytes)!;
        Assert.Equal(bytes, MsgPack.Serialize(raw));

        var value = DecodeFixture("variety.msgpack");
        Assert.Equal(1L, value["int"]);
        Assert.Equal(-200L, value["neg"]);
        Assert.Equal(70000L, value["big"]);
        Assert.Equal(1L << 40, value["huge"]);
        Assert.Equal(1.5, value["float"]);
        Assert.Equal(true, value["bool"]);
        Assert.Null(value["none"]);
        Assert.Equal(new object?[] { 1L, 2L, 3L }, (List<object?>)value["list"]!);
        Assert.Equal("héllo", value["text"]);
        Assert.Equal(new byte[] { 0, 1 }, value["bytes"]);
        Assert.Equal(2.5, value["np_float"]);
        Assert.Equal(7L, value["np_int"]);
        Assert.Equal([1f, -2f, 3f], ((NumpyArray)((Dictionary<object, object?>)value["nested"]!)["arr"]!).ToFloats());
        Assert.Equal([1f, 0f], ((NumpyArray)value["bool_arr"]!).ToFloats());
        Assert.Equal([1f, 2f, 3f, 4f], ((NumpyArray)value["f64"]!).ToFloats());
        Assert.Equal([1.5f, -2f], ((NumpyArray)value["big_endian"]!).ToFloats());
    }

    [Theory]
    [InlineData(new byte[] { 0xc4, 0x05, 0x01 }, "ends early")]
    [InlineData(new byte[] { 0x92, 0x01 }, "longer than the message")]
    [InlineData(new byte[] { 0xc1 }, "0xc1 is not supported")]
    [InlineData(new byte[] { 0xd4, 0x01, 0x02 }, "extension types are not accepted")]
    [InlineData(new byte[] { 0xdd, 0x00, 0x00, 0x10, 0x00 }, "longer than the message")]
    [InlineData(new byte[] { 0xdd, 0xff, 0xff, 0xff, 0xff }, "length too large")]
    [InlineData(new byte[] { 0x01, 0x02 }, "bytes follow")]
    public void Malformed_messages_are_refused_with_a_reason(byte[] message, string reason)
    {
        var error = Assert.Throws<FormatException>(() => MsgPack.Deserialize(message));
        Assert.Contains(reason, error.Message);
    }

    [Fact]
    public void Nesting_past_the_limit_is_refused_instead_of_overflowing_the_stack()
    {
        var message = Enumerable.Repeat((byte)0x91, 10_000).Append((byte)0x01).ToArray();
        Assert.Contains("nested deeper", Assert.Throws<FormatException>(() => MsgPack.Deserialize(message)).Message);
    }

    [Fact]
    public void An_ndarray_whose_data_does_not_fit_its_shape_is_refused()
    {
        var map = new NumpyArray("<f4", [2, 2], new byte[12]).ToWire();
        var error = Assert.Throws<FormatException>(() => NumpyArray.FromWireTree(MsgPack.Deserialize(MsgPack.Serialize(map))));
        Assert.Contains("needs 16 bytes, got 12", error.Message);
        Assert.Throws<FormatException>(() => new NumpyArray("<U4", [1], Encoding.ASCII.GetBytes("abcd")).ToFloats());
    }

    private sealed class FloatTolerance(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float x, float y) => Math.Abs(x - y) <= tolerance;
        public int GetHashCode(float obj) => 0;
    }
}
