using System.Text;
using VlaCloud.Contracts.Wire;

namespace VlaCloud.Client.Tests;

/// <summary>
/// What a server decodes from clients (stream frames, request bodies) is read strictly: ambiguous or unstorable input
/// and messages that would swell once decoded are refused as malformed, naming where.
/// </summary>
public sealed class StrictWireTests
{
    private static DecodeBudget Budget(int bytes) => DecodeBudget.ForMessage(bytes);

    [Fact]
    public void Json_decodes_to_the_same_plain_values_as_messagepack()
    {
        var json = """{"type":"observation","id":3,"state":[0.5,-1,2e3],"ok":true,"none":null,"nested":{"a":[{"b":"c"}]}}"""u8.ToArray();
        var tree = (Dictionary<string, object?>)JsonWire.Parse(json, Budget(json.Length))!;

        Assert.Equal("observation", tree["type"]);
        Assert.Equal(3L, tree["id"]);
        Assert.Equal(new List<object?> { 0.5, -1L, 2000.0 }, (List<object?>)tree["state"]!);
        Assert.Equal(true, tree["ok"]);
        Assert.Null(tree["none"]);
        Assert.Equal("c", ((Dictionary<string, object?>)((List<object?>)((Dictionary<string, object?>)tree["nested"]!)["a"]!)[0]!)["b"]);
    }

    public static TheoryData<string, string, string> Refused => new()
    {
        { """{"type":"ping","type":"observation"}""", "", "the key 'type' appears twice." },
        { """{"images":{"front":{"format":"png","format":"raw"}}}""", "images.front", "the key 'format' appears twice." },
        { """{"instruction":"pick \ud800 up"}""", "instruction", "the text is not valid UTF-8 or has an unpaired surrogate." },
        { """{"cameras":[{"name":"a\u0000b"}]}""", "cameras[0].name", "the text contains a NUL character." },
        { """{"state":[1e400]}""", "state[0]", "the number is out of range." },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void Repeated_keys_unpaired_surrogates_nul_and_infinite_numbers_are_refused_with_their_path(string json, string path, string reason)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        foreach (var decode in new Action[] { () => JsonWire.Parse(bytes, Budget(bytes.Length)), () => JsonWire.Check(bytes, Budget(bytes.Length)) })
        {
            var error = Assert.Throws<JsonWireException>(decode);
            Assert.Equal((path, reason), (error.Path, error.Reason));
        }
    }

    [Fact]
    public void Invalid_utf8_and_malformed_json_are_refused_too()
    {
        byte[] invalid = [(byte)'"', 0xff, 0xfe, (byte)'"'];
        Assert.Equal("the text is not valid UTF-8.", Assert.Throws<JsonWireException>(() => JsonWire.Check(invalid, Budget(4))).Reason);
        Assert.Equal("the text is not valid UTF-8 or has an unpaired surrogate.", Assert.Throws<JsonWireException>(() => JsonWire.Parse(invalid, Budget(4))).Reason);
        Assert.StartsWith("not valid JSON", Assert.Throws<JsonWireException>(() => JsonWire.Parse("{\"a\": "u8, Budget(6))).Reason);
        var deep = Encoding.UTF8.GetBytes(new string('[', 100) + new string(']', 100));
        Assert.StartsWith("not valid JSON", Assert.Throws<JsonWireException>(() => JsonWire.Parse(deep, Budget(deep.Length))).Reason);
    }

    [Fact]
    public void A_json_list_of_tiny_numbers_past_eight_times_its_size_is_refused_and_escaped_base64_is_not()
    {
        // 1 MB of "0,": two bytes each, some 40 once decoded. The same megabyte as one string costs what it weighs.
        var numbers = Encoding.UTF8.GetBytes("{\"state\":[" + string.Join(",", Enumerable.Repeat("0", 500_000)) + "]}");
        var error = Assert.Throws<JsonWireException>(() => JsonWire.Parse(numbers, Budget(numbers.Length)));
        Assert.StartsWith("state[", error.Path);
        Assert.Contains("once decoded", error.Reason);
        Assert.Throws<JsonWireException>(() => JsonWire.Check(numbers, Budget(numbers.Length)));

        // System.Text.Json escapes '+' in base64 as \u002B: the escaped path is checked without keeping the text.
        var image = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new { data = Convert.ToBase64String(Enumerable.Range(0, 750_000).Select(i => (byte)(i * 7)).ToArray()) });
        JsonWire.Check(image, Budget(image.Length));
        Assert.Equal(1_000_000, ((string)((Dictionary<string, object?>)JsonWire.Parse(image, Budget(image.Length))!)["data"]!).Length);
    }

    [Fact]
    public void A_messagepack_array_of_fixints_past_the_budget_and_a_repeated_key_are_refused()
    {
        // 16 MB frame of one-byte integers would become 16 million boxed longs (~500 MB).
        var count = 1 << 20;
        var frame = new byte[5 + count];
        frame[0] = 0xdd;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)count);
        Assert.Equal(count, ((List<object?>)MsgPack.Deserialize(frame)!).Count);
        Assert.Contains("once decoded", Assert.Throws<FormatException>(() => MsgPack.Deserialize(frame, Budget(frame.Length))).Message);

        byte[] repeated = [0x82, 0xa1, (byte)'a', 0x01, 0xa1, (byte)'a', 0x02];
        Assert.Equal("MessagePack map key 'a' appears twice.", Assert.Throws<FormatException>(() => MsgPack.Deserialize(repeated)).Message);

        var image = MsgPack.Serialize(new Dictionary<string, object?> { ["data"] = new byte[1 << 20], ["shape"] = new List<object?> { 512L, 683L, 3L } });
        Assert.IsType<byte[]>(((Dictionary<object, object?>)MsgPack.Deserialize(image, Budget(image.Length))!)["data"]);
    }

    [Fact]
    public void An_ndarray_whose_shape_overflows_is_malformed_not_a_wrapped_count()
    {
        // 2^31 × 2^31 × 2^31 wraps a long to 0 × 8 bytes: without checked arithmetic an empty data field would pass.
        var wire = new Dictionary<object, object?>(MsgPack.KeyComparer.Instance)
        {
            ["__ndarray__"u8.ToArray()] = true,
            ["data"u8.ToArray()] = Array.Empty<byte>(),
            ["dtype"u8.ToArray()] = "<f8",
            ["shape"u8.ToArray()] = new List<object?> { 1L << 30, 1L << 30, 1L << 30, 1L << 30 },
        };
        var error = Assert.Throws<FormatException>(() => NumpyArray.FromWireTree(MsgPack.Deserialize(MsgPack.Serialize(wire))));
        Assert.Contains("more elements than any message can hold", error.Message);
    }
}
