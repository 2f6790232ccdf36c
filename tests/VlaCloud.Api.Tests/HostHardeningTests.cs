using System.Diagnostics;
using System.Formats.Tar;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using VlaCloud.Contracts.Wire;
using VlaCloud.Testing;
using Xunit.Abstractions;

namespace VlaCloud.Api.Tests;

/// <summary>
/// The reproductions of issue 18 against a real host: the built VlaCloud in its own process (Kestrel, Postgres, Redis,
/// Hangfire), its resident memory read from /proc. Image bombs over REST, in WebSocket frames and inside a dataset must
/// be answered within a second while the host's peak memory grows by less than 100 MB (before the fix the PNG took it
/// from 205 MB to 6.5 GB and an OOM kill); requests Kestrel rejects itself get problem bodies.
/// </summary>
public sealed class HostHardeningTests(LiveHost host, ITestOutputHelper output) : IClassFixture<LiveHost>
{
    /// <summary>How much the host's peak resident memory may grow while it answers a bomb.</summary>
    private const long MaxGrowth = 100L << 20;

    /// <summary>
    /// How long an answer to a bomb may take. Refusing from the header takes milliseconds; the bound leaves room for a
    /// machine shared with builds, and is still far from the 47-50 s the bombs took to decode.
    /// </summary>
    private static readonly TimeSpan MaxAnswer = TimeSpan.FromSeconds(1);

    private HttpClient Client()
    {
        var client = new HttpClient { BaseAddress = new Uri(host.Url), Timeout = TimeSpan.FromMinutes(2) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", host.DemoKey);
        return client;
    }

    private static object ActBody(object main) => new
    {
        checkpoint = "sim-demo@production",
        observation = new
        {
            images = new { main, wrist = new { format = "raw", shape = new[] { 64, 64, 3 }, data = Convert.ToBase64String(new byte[64 * 64 * 3]) } },
            state = new[] { 0.5, 0.5, 1.0 },
            instruction = "pick the red cube and place it in the blue bowl",
        },
    };

    /// <summary>Runs <paramref name="attack"/> and returns how long it took and how far the host's peak memory rose above where it was.</summary>
    private async Task<(TimeSpan Elapsed, long Growth)> MeasureAsync(string what, Func<Task> attack)
    {
        var pid = host.ProcessId;
        var before = ProcessMemory.Resident(pid);
        ProcessMemory.ResetPeak(pid);
        var stopwatch = Stopwatch.StartNew();
        await attack();
        var elapsed = stopwatch.Elapsed;
        var growth = ProcessMemory.PeakResident(pid) - before;
        output.WriteLine($"{what}: answered in {elapsed.TotalMilliseconds:0} ms; host resident {before >> 20} MB before, peak +{growth / 1048576.0:0.0} MB");
        return (elapsed, growth);
    }

    /// <summary>The same request path once with a harmless image, so the bomb's measurement holds no JIT or first-use cost.</summary>
    private async Task WarmUpAsync(HttpClient client)
    {
        using var bitmap = new SkiaSharp.SKBitmap(128, 128);
        using var png = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
        var warm = await client.PostAsJsonAsync("/v1/act", ActBody(new { format = "png", data = Convert.ToBase64String(png.ToArray()) }));
        Assert.Equal(HttpStatusCode.BadRequest, warm.StatusCode);
    }

    [Theory]
    [InlineData("png", "50000×50000")]
    [InlineData("jpeg", "16384×16384")]
    public async Task An_image_bomb_over_rest_is_refused_within_a_second_while_the_host_grows_less_than_100_mb(string format, string size)
    {
        using var client = Client();
        await WarmUpAsync(client);
        var bomb = format == "png" ? ImageBombs.Png() : ImageBombs.Jpeg();

        HttpResponseMessage? response = null;
        var (elapsed, growth) = await MeasureAsync($"REST {format} bomb ({bomb.Length} bytes, {size})", async () =>
            response = await client.PostAsJsonAsync("/v1/act", ActBody(new { format, data = Convert.ToBase64String(bomb) })));

        Assert.Equal(HttpStatusCode.BadRequest, response!.StatusCode);
        Assert.Contains($"The image is {size}", await response.Content.ReadAsStringAsync());
        Assert.True(elapsed < MaxAnswer, $"answered in {elapsed}");
        Assert.True(growth < MaxGrowth, $"the host's peak grew by {growth >> 20} MB");
    }

    [Theory]
    [InlineData("json", "png")]
    [InlineData("msgpack", "jpeg")]
    public async Task An_image_bomb_in_a_websocket_frame_is_refused_within_a_second_while_the_host_grows_less_than_100_mb(string encoding, string format)
    {
        using var client = Client();
        await WarmUpAsync(client);
        using var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", $"Bearer {host.DemoKey}");
        await socket.ConnectAsync(new Uri($"{host.Url.Replace("http", "ws")}/v1/stream?checkpoint=sim-demo@production&encoding={encoding}"), CancellationToken.None);
        await ReceiveAsync(socket);
        var binary = encoding == "msgpack";
        var bomb = format == "png" ? ImageBombs.Png() : ImageBombs.Jpeg();
        var frame = new Dictionary<string, object?>
        {
            ["type"] = "observation", ["id"] = 1, ["state"] = new[] { 0.5, 0.5, 1.0 }, ["instruction"] = "pick the red cube",
            ["images"] = new Dictionary<string, object?>
            {
                ["main"] = new Dictionary<string, object?> { ["format"] = format, ["data"] = binary ? bomb : Convert.ToBase64String(bomb) },
                ["wrist"] = new Dictionary<string, object?> { ["format"] = "raw", ["shape"] = new[] { 64, 64, 3 }, ["data"] = binary ? new byte[64 * 64 * 3] : Convert.ToBase64String(new byte[64 * 64 * 3]) },
            },
        };

        byte[] reply = [];
        var (elapsed, growth) = await MeasureAsync($"WebSocket {encoding} frame with a {format} bomb", async () =>
        {
            await socket.SendAsync(binary ? MsgPack.Serialize(frame) : JsonSerializer.SerializeToUtf8Bytes(frame), binary ? WebSocketMessageType.Binary : WebSocketMessageType.Text, true, CancellationToken.None);
            reply = await ReceiveAsync(socket);
        });

        var text = binary ? JsonSerializer.Serialize(MsgPack.Deserialize(reply), new JsonSerializerOptions { Converters = { new MsgPackMapConverter() } }) : Encoding.UTF8.GetString(reply);
        Assert.Contains("\"status\":400", text);
        Assert.Contains("observation.images.main", text);
        Assert.True(elapsed < MaxAnswer, $"answered in {elapsed}");
        Assert.True(growth < MaxGrowth, $"the host's peak grew by {growth >> 20} MB");
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
    }

    [Fact]
    public async Task A_dataset_image_bomb_fails_validation_naming_the_row_while_the_host_grows_less_than_100_mb()
    {
        using var client = Client();
        // An embodiment the hand-made dataset fits: one 16×16 camera 'front', 2 state and 4 action values.
        var embodiment = $"bomb-arm-{Guid.NewGuid():N}"[..16];
        var created = await client.PostAsJsonAsync("/v1/embodiments", new CreateEmbodimentRequest(embodiment, 4, 2, "delta_eef+gripper", [new CameraDto("front", 16, 16)], 10, 4));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var archive = ArchiveOf(new HandMadeDataset(episodes: 2, length: 4, imageOf: (e, f) => e == 1 && f == 2 ? ImageBombs.Png() : null));

        DatasetResponse? dataset = null;
        var (elapsed, growth) = await MeasureAsync("dataset with a PNG bomb in episode 1, row 2", async () =>
        {
            var upload = await client.PostAsJsonAsync("/v1/uploads", new CreateUploadRequest("bomb.tar", archive.Length, Convert.ToHexStringLower(SHA256.HashData(archive)), "dataset", Embodiment: embodiment));
            var id = (await upload.Content.ReadFromJsonAsync<UploadResponse>())!.Id;
            using var part = new ByteArrayContent(archive);
            part.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            Assert.Equal(HttpStatusCode.OK, (await client.PutAsync($"/v1/uploads/{id}/parts/1", part)).StatusCode);
            var completed = (await (await client.PostAsJsonAsync($"/v1/uploads/{id}/complete", new CompleteUploadRequest())).Content.ReadFromJsonAsync<UploadResponse>())!;
            var deadline = DateTime.UtcNow.AddMinutes(2);
            do
            {
                await Task.Delay(100);
                dataset = await client.GetFromJsonAsync<DatasetResponse>($"/v1/datasets/{completed.DatasetId}");
            }
            while (dataset!.Status == "validating" && DateTime.UtcNow < deadline);
        });

        Assert.Equal("failed", dataset!.Status);
        var issue = Assert.Single(dataset.Issues);
        Assert.Equal(("data/chunk-000/episode_000001.parquet", "row 2: 'observation.images.front' is 50000×50000; meta/info.json declares 16×16."), (issue.File, issue.Message));
        // The answer here is the validation job's, behind Hangfire's queue polling (0.5 s): its bound is the job's, not a request's.
        Assert.True(elapsed < TimeSpan.FromSeconds(60), $"validated in {elapsed}");
        Assert.True(growth < MaxGrowth, $"the host's peak grew by {growth >> 20} MB");
    }

    public static TheoryData<string, int, string> Rejected => new()
    {
        { "GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n", 400, "Bad Request" },
        { "GET /health z HTTP/1.1\r\nHost: x\r\n\r\n", 400, "Bad Request" },
        { $"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {new string('a', 40_000)}\r\n\r\n", 431, "Request Header Fields Too Large" },
    };

    [Theory]
    [MemberData(nameof(Rejected))]
    public async Task A_request_kestrel_rejects_itself_gets_a_problem_details_body(string request, int status, string title)
    {
        var (head, body) = await RawAsync(request);

        Assert.StartsWith($"HTTP/1.1 {status} ", head);
        Assert.Contains("Content-Type: application/problem+json", head);
        Assert.Contains($"Content-Length: {Encoding.UTF8.GetByteCount(body)}", head);
        var problem = JsonNode.Parse(body)!;
        Assert.Equal((status, title), ((int)problem["status"]!, (string)problem["title"]!));
        Assert.False(string.IsNullOrEmpty((string?)problem["detail"]));
    }

    [Fact]
    public async Task Responses_of_the_application_pass_through_the_rewriting_unchanged()
    {
        // Two requests on one kept-alive connection: a 200 and the application's own 401 problem, as they were.
        var (head, rest) = await RawAsync("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/embodiments HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200 ", head);
        Assert.Contains("HTTP/1.1 401 ", rest);
        Assert.Contains("Content-Type: application/problem+json", rest);
        Assert.Contains("\"status\":401", rest);
    }

    /// <summary>Sends raw bytes to the host and reads until it closes: the first response's head and the rest.</summary>
    private async Task<(string Head, string Body)> RawAsync(string request)
    {
        using var tcp = new TcpClient();
        var url = new Uri(host.Url);
        await tcp.ConnectAsync(url.Host, url.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.Latin1.GetBytes(request));
        using var received = new MemoryStream();
        await stream.CopyToAsync(received).WaitAsync(TimeSpan.FromSeconds(30));
        var text = Encoding.UTF8.GetString(received.ToArray());
        var split = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(split > 0, $"no response head in: {text}");
        return (text[..split], text[(split + 4)..]);
    }

    private static async Task<byte[]> ReceiveAsync(WebSocket socket)
    {
        using var message = new MemoryStream();
        var buffer = new byte[1 << 16];
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage) return message.ToArray();
        }
    }

    private static byte[] ArchiveOf(HandMadeDataset dataset)
    {
        using (dataset)
        {
            using var tar = new MemoryStream();
            TarFile.CreateFromDirectory(dataset.Root, tar, includeBaseDirectory: false);
            return tar.ToArray();
        }
    }

    /// <summary>Writes decoded MessagePack maps (object keys) as JSON objects.</summary>
    private sealed class MsgPackMapConverter : System.Text.Json.Serialization.JsonConverter<Dictionary<object, object?>>
    {
        public override Dictionary<object, object?> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => throw new NotSupportedException();

        public override void Write(Utf8JsonWriter writer, Dictionary<object, object?> value, JsonSerializerOptions options) =>
            JsonSerializer.Serialize(writer, value.ToDictionary(e => e.Key.ToString()!, e => e.Value), options);
    }
}
