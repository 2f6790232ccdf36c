using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using Npgsql;
using VlaCloud.Api.Acting;
using VlaCloud.Api.Apis;
using VlaCloud.Api.Tests.Hardening;
using VlaCloud.Testing;
using Xunit.Abstractions;

namespace VlaCloud.Api.Tests.FineTuning;

/// <summary>
/// Issue 22's proof: two API processes and one trainer process on one Postgres, one Redis and one shared artifact folder,
/// as two api pods and a trainer pod would run.
/// </summary>
[Collection(FineTuningCollection.Name)]
public sealed class TwoApiProcessesTests(ServicesFixture services, ITestOutputHelper output) : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("vlacloud-two-api-").FullName;

    [Trait("Category", "Slow")]
    [Fact]
    public async Task Uploads_alternate_between_two_api_processes_jobs_train_on_the_trainer_only_and_a_revocation_on_one_closes_a_stream_on_the_other()
    {
        // The in-process host only creates the tenant and the base checkpoint (as an admin would); it serves nothing else.
        await using var setup = new VlaCloudAppFactory(services, FineTuningWorld.Settings(root, trainer: false));
        var world = await FineTuningWorld.CreateAsync(setup);
        using var first = await TrainerProcess.StartApiAsync(services, root, "api-1");
        using var second = await TrainerProcess.StartApiAsync(services, root, "api-2");
        using var trainer = TrainerProcess.Start(services, root, "trainer");
        var replicas = new[] { world with { Client = Client(first.Url, world.Key) }, world with { Client = Client(second.Url, world.Key) } };

        // Parts alternate between the two processes; each sees the others' parts; completion on the second.
        var tar = await FineTuningWorld.SimDatasetTar;
        var created = await replicas[0].Client.PostAsJsonAsync("/v1/uploads", new CreateUploadRequest("sim.tar", tar.Length, FineTuningWorld.Sha(tar), "dataset", "application/x-tar", "sim-tabletop"));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var upload = (await created.Content.ReadFromJsonAsync<UploadResponse>())!.Id;
        var size = (tar.Length + 3) / 4;
        for (var n = 1; n <= 4; n++)
        {
            var put = await replicas[n % 2].PutPartAsync(upload, n, tar[((n - 1) * size)..Math.Min(tar.Length, n * size)]);
            Assert.True(put.StatusCode == HttpStatusCode.OK, await put.Content.ReadAsStringAsync());
        }
        Assert.Equal([1, 2, 3, 4], (await replicas[0].Client.GetFromJsonAsync<UploadResponse>($"/v1/uploads/{upload}"))!.Parts.Select(p => p.PartNumber));
        var dataset = await replicas[1].CompleteDatasetAsync(upload);
        Assert.Equal("ready", dataset.Status);

        // The job runs on the trainer process: its row names the trainer's pid as the worker, never an API process's.
        var job = await replicas[0].CreateJobAsync(dataset.Id, new { steps = 4, batch_size = 2, learning_rate = 1e-3, warmup_steps = 1, checkpoint_interval = 2, seed = 3 });
        job = await replicas[1].WaitForJobAsync(job.Id, j => j.Status == "succeeded", TimeSpan.FromMinutes(5), $"job did not succeed:\n{trainer.OutputTail}");
        var worker = await WorkerOfAsync(job.Id);
        Assert.Equal(trainer.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), worker.Split(':')[^2]);
        Assert.DoesNotContain("Hangfire server started", first.OutputTail + second.OutputTail);

        // A stream on the second process; its key revoked through the first: the stream closes with 4401.
        var admin = setup.CreateClient(await setup.CreateAdminKeyAsync());
        var (_, tenantId) = await SessionClient.KeyOfAsync(setup, world.Key);
        var issued = await Client(first.Url, "").SendAsync(new HttpRequestMessage(HttpMethod.Post, $"/v1/admin/tenants/{tenantId}/api-keys")
        {
            Headers = { Authorization = admin.DefaultRequestHeaders.Authorization },
            Content = JsonContent.Create(new CreateApiKeyRequest("robot", ["inference"])),
        });
        Assert.True(issued.StatusCode == HttpStatusCode.Created, await issued.Content.ReadAsStringAsync());
        var robot = (await issued.Content.ReadFromJsonAsync<CreatedApiKeyResponse>())!;
        using var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", $"Bearer {robot.PlainKey}");
        await socket.ConnectAsync(new Uri($"{second.Url.Replace("http", "ws", StringComparison.Ordinal)}/v1/stream?checkpoint={world.Model}@production"), CancellationToken.None);
        Assert.Equal("session", (string)(await SessionClient.ReceiveJsonAsync(socket))["type"]!);

        var revoke = new HttpRequestMessage(HttpMethod.Delete, $"/v1/admin/tenants/{tenantId}/api-keys/{robot.Key.Id}") { Headers = { Authorization = admin.DefaultRequestHeaders.Authorization } };
        var clock = Stopwatch.StartNew();
        Assert.Equal(HttpStatusCode.NoContent, (await Client(first.Url, "").SendAsync(revoke)).StatusCode);
        var revokedAt = clock.Elapsed;
        var (status, after) = await SessionClient.CloseAsync(socket, clock, TimeSpan.FromSeconds(10));
        output.WriteLine($"revoked on api-1 (request took {revokedAt.TotalMilliseconds:F0} ms); the stream on api-2 closed {after.TotalMilliseconds:F0} ms after the revoke was sent");
        Assert.Equal((WebSocketCloseStatus)StreamMessages.KeyRevoked, status);
    }

    private static HttpClient Client(string url, string key)
    {
        var client = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromMinutes(2) };
        if (key.Length > 0) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    private async Task<string> WorkerOfAsync(Guid jobId)
    {
        await using var connection = new NpgsqlConnection(services.PostgresConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT worker_id FROM fine_tuning_jobs WHERE id = @id", connection) { Parameters = { new("id", jobId) } };
        return (string)(await command.ExecuteScalarAsync())!;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
