using System.Text;
using System.Text.Json.Nodes;
using VlaCloud.Testing;
using YamlDotNet.Serialization;

namespace VlaCloud.Deploy.Tests;

public sealed class HelmChartTests
{
    private const string Chart = "helm/vlacloud";
    private const string GpuValues = "helm/vlacloud/values-gpu.yaml";
    // The defaults plus a real database password (the chart refuses the default one).
    private const string CiDefaults = "helm/vlacloud/ci/default-values.yaml";
    private const string CiAllOptions = "helm/vlacloud/ci/all-options-values.yaml";

    [Theory]
    [InlineData("values.yaml", "ci/default-values.yaml")]
    [InlineData("values-gpu.yaml", "ci/default-values.yaml")]
    [InlineData("values.yaml", "ci/all-options-values.yaml")]
    [InlineData("values-gpu.yaml", "ci/all-options-values.yaml")]
    public async Task Helm_lint_passes_strictly_for_each_values_file(string values, string ciValues)
    {
        var (exitCode, output) = await ExternalTools.RunAsync(ExternalTools.Helm,
            ["lint", "--strict", Chart, "-f", $"{Chart}/{values}", "-f", $"{Chart}/{ciValues}"]);
        Assert.True(exitCode == 0, output);
        Assert.Contains("0 chart(s) failed", output);
    }

    [Fact]
    public async Task The_chart_refuses_to_install_with_the_default_database_password()
    {
        var (exitCode, output) = await ExternalTools.RunAsync(ExternalTools.Helm, ["template", "vlc", Chart]);
        Assert.NotEqual(0, exitCode);
        Assert.Contains("change-me", output);

        // A Secret of the operator's own carries the real password instead.
        Assert.NotEmpty(await RenderAsync("--set", "existingSecret=vlacloud-credentials"));
    }

    [Theory]
    [InlineData("api.replicaCount=two", "/api/replicaCount")]
    [InlineData("api.autoscaling.enabled=maybe", "/api/autoscaling/enabled")]
    [InlineData("observability.metricsPort=metrics", "/observability/metricsPort")]
    [InlineData("artifacts.store=ftp", "/artifacts/store")]
    public async Task The_values_schema_rejects_a_value_of_the_wrong_type(string setting, string path)
    {
        var (exitCode, output) = await ExternalTools.RunAsync(ExternalTools.Helm, ["template", "vlc", Chart, "-f", CiDefaults, "--set", setting]);
        Assert.NotEqual(0, exitCode);
        Assert.Contains(path, output);
    }

    [Fact]
    public async Task Every_option_on_renders_the_service_monitor_network_policies_queue_depth_autoscaler_http_route_and_shared_store()
    {
        var manifests = await RenderAsync("-f", CiAllOptions);
        Assert.Equal(
            ["ConfigMap", "ConfigMap", "Deployment", "Deployment", "HorizontalPodAutoscaler", "HTTPRoute", "Ingress", "Job", "NetworkPolicy",
             "NetworkPolicy", "PersistentVolumeClaim", "PodDisruptionBudget", "PodDisruptionBudget", "Secret", "Secret", "Service",
             "ServiceAccount", "ServiceMonitor"],
            manifests.Select(m => (string)m["kind"]!).Order());
        var api = Deployment(manifests, "api");
        var apiLabels = api["spec"]!["selector"]!["matchLabels"];

        var monitor = manifests.Single(m => (string)m["kind"]! == "ServiceMonitor");
        Assert.Equal("monitoring.coreos.com/v1", (string)monitor["apiVersion"]!);
        Assert.Equal("kube-prometheus-stack", (string)monitor["metadata"]!["labels"]!["release"]!);
        var endpoint = Assert.Single(monitor["spec"]!["endpoints"]!.AsArray())!;
        Assert.Equal(("metrics", "/metrics"), ((string)endpoint["port"]!, (string)endpoint["path"]!));
        Assert.True(JsonNode.DeepEquals(apiLabels, monitor["spec"]!["selector"]!["matchLabels"]));

        var hpa = manifests.Single(m => (string)m["kind"]! == "HorizontalPodAutoscaler");
        var metrics = hpa["spec"]!["metrics"]!.AsArray();
        var external = metrics.Single(m => (string)m!["type"]! == "External")!["external"]!;
        Assert.Equal("vlacloud_inference_queue_depth", (string)external["metric"]!["name"]!);
        Assert.Equal("AverageValue", (string)external["target"]!["type"]!);
        Assert.Contains(metrics, m => (string)m!["type"]! == "Resource");
        Assert.Equal("300", (string)hpa["spec"]!["behavior"]!["scaleDown"]!["stabilizationWindowSeconds"]!);

        var route = manifests.Single(m => (string)m["kind"]! == "HTTPRoute");
        Assert.Equal("gateway.networking.k8s.io/v1", (string)route["apiVersion"]!);
        var backend = Assert.Single(route["spec"]!["rules"]![0]!["backendRefs"]!.AsArray())!;
        Assert.Equal(("vlc-vlacloud", "80"), ((string)backend["name"]!, (string)backend["port"]!));

        var policy = manifests.Single(m => (string)m["kind"]! == "NetworkPolicy" && (string)m["metadata"]!["name"]! == "vlc-vlacloud-api");
        Assert.True(JsonNode.DeepEquals(apiLabels, policy["spec"]!["podSelector"]!["matchLabels"]));
        // Out only to DNS, Postgres, Redis and the store; in only to the HTTP port, and metrics from the monitoring namespace.
        Assert.Equal(["53", "53", "5432", "6379", "443"],
            policy["spec"]!["egress"]!.AsArray().SelectMany(r => r!["ports"]!.AsArray()).Select(p => (string)p!["port"]!));
        Assert.Equal("db", (string)policy["spec"]!["egress"]![1]!["to"]![0]!["namespaceSelector"]!["matchLabels"]!["kubernetes.io/metadata.name"]!);
        Assert.Equal(["http", "metrics"], policy["spec"]!["ingress"]!.AsArray().SelectMany(r => r!["ports"]!.AsArray()).Select(p => (string)p!["port"]!));

        var claim = manifests.Single(m => (string)m["kind"]! == "PersistentVolumeClaim");
        Assert.Equal(["ReadWriteMany"], claim["spec"]!["accessModes"]!.AsArray().Select(a => (string)a!));
        foreach (var component in new[] { "api", "trainer" })
        {
            var deployment = Deployment(manifests, component);
            var pod = deployment["spec"]!["template"]!["spec"]!;
            Assert.Contains(pod["volumes"]!.AsArray(), v => (string?)v!["persistentVolumeClaim"]?["claimName"] == (string)claim["metadata"]!["name"]!);
            var spread = pod["topologySpreadConstraints"]!.AsArray();
            Assert.NotEmpty(spread);
            Assert.All(spread, s => Assert.True(JsonNode.DeepEquals(deployment["spec"]!["selector"]!["matchLabels"], s!["labelSelector"]!["matchLabels"])));
        }
    }

    [Fact]
    public async Task The_root_filesystem_is_read_only_and_every_path_the_host_writes_is_a_volume()
    {
        foreach (var arguments in new[] { Array.Empty<string>(), ["-f", CiAllOptions] })
        {
            var manifests = await RenderAsync(arguments);
            foreach (var component in new[] { "api", "trainer" })
            {
                var deployment = Deployment(manifests, component);
                var container = Container(deployment);
                Assert.Equal("true", (string)container["securityContext"]!["readOnlyRootFilesystem"]!);
                var env = Env(deployment);
                var config = manifests.Single(m => (string)m["kind"]! == "ConfigMap" && (string)m["metadata"]!["name"]! == "vlc-vlacloud")["data"]!.AsObject()
                    .ToDictionary(p => p.Key, p => (string)p.Value!);
                var writable = new List<string> { "/tmp", env["VlaCloud__Inference__CheckpointCachePath"], env["VlaCloud__FineTuning__WorkPath"] };
                if (config["VlaCloud__Artifacts__Store"] == "filesystem") writable.Add(config["VlaCloud__Artifacts__Path"]);
                var mounts = container["volumeMounts"]!.AsArray().Select(m => (string)m!["mountPath"]!).ToList();
                Assert.All(writable, path => Assert.Contains(mounts, mount => path == mount || path.StartsWith(mount + "/", StringComparison.Ordinal)));
            }
        }
    }

    [Fact]
    public async Task The_default_values_render_every_part_of_the_deployment_without_gpus()
    {
        var manifests = await RenderAsync();

        Assert.Equal(
            ["ConfigMap", "ConfigMap", "Deployment", "Deployment", "HorizontalPodAutoscaler", "Job", "PodDisruptionBudget",
             "Secret", "Secret", "Service", "ServiceAccount"],
            manifests.Select(m => (string)m["kind"]!).Order());
        Assert.DoesNotContain("nvidia.com/gpu", string.Join('\n', manifests.Select(m => m.ToJsonString())));
        Assert.Equal("vlacloud:0.1.0", (string)Container(Deployment(manifests, "api"))["image"]!);
    }

    [Fact]
    public async Task The_gpu_values_give_both_deployments_gpu_limits_a_gpu_node_selector_tolerations_and_the_cuda_image()
    {
        var manifests = await RenderAsync("-f", GpuValues);

        foreach (var component in new[] { "api", "trainer" })
        {
            var deployment = Deployment(manifests, component);
            var pod = deployment["spec"]!["template"]!["spec"]!;
            Assert.Equal("1", (string)Container(deployment)["resources"]!["limits"]!["nvidia.com/gpu"]!);
            Assert.Equal("true", (string)pod["nodeSelector"]!["nvidia.com/gpu.present"]!);
            var toleration = Assert.Single(pod["tolerations"]!.AsArray())!;
            Assert.Equal(("nvidia.com/gpu", "Exists", "NoSchedule"),
                ((string)toleration["key"]!, (string)toleration["operator"]!, (string)toleration["effect"]!));
            Assert.Equal("vlacloud:0.1.0-cuda", (string)Container(deployment)["image"]!);
        }
    }

    [Fact]
    public async Task The_migration_job_is_a_pre_install_and_pre_upgrade_hook_that_runs_the_host_with_migrate()
    {
        var manifests = await RenderAsync();
        var job = manifests.Single(m => (string)m["kind"]! == "Job");
        var annotations = job["metadata"]!["annotations"]!;

        Assert.Equal("pre-install,pre-upgrade", (string)annotations["helm.sh/hook"]!);
        Assert.Equal(["--migrate"], Container(job)["args"]!.AsArray().Select(a => (string)a!));
        Assert.Equal("Never", (string)job["spec"]!["template"]!["spec"]!["restartPolicy"]!);

        // It runs before the release's own ConfigMap and Secret exist, so its copies are earlier hooks.
        var sources = Container(job)["envFrom"]!.AsArray()
            .Select(s => s!["configMapRef"] is { } map ? ("ConfigMap", (string)map["name"]!) : ("Secret", (string)s["secretRef"]!["name"]!))
            .ToList();
        Assert.Equal(["ConfigMap", "Secret"], sources.Select(s => s.Item1));
        foreach (var (kind, name) in sources)
        {
            var source = manifests.Single(m => (string)m["metadata"]!["name"]! == name && (string)m["kind"]! == kind);
            Assert.Equal("pre-install,pre-upgrade", (string)source["metadata"]!["annotations"]!["helm.sh/hook"]!);
            Assert.True(int.Parse((string)source["metadata"]!["annotations"]!["helm.sh/hook-weight"]!) <
                        int.Parse((string)annotations["helm.sh/hook-weight"]!));
        }
    }

    [Fact]
    public async Task Liveness_probes_healthz_and_readiness_probes_readyz_on_both_deployments()
    {
        var manifests = await RenderAsync();
        foreach (var component in new[] { "api", "trainer" })
        {
            var container = Container(Deployment(manifests, component));
            Assert.Equal("/healthz", (string)container["livenessProbe"]!["httpGet"]!["path"]!);
            Assert.Equal("/readyz", (string)container["readinessProbe"]!["httpGet"]!["path"]!);
            Assert.Equal("http", (string)container["readinessProbe"]!["httpGet"]!["port"]!);
        }
    }

    [Fact]
    public async Task The_trainer_runs_with_the_trainer_role_and_its_workers_and_the_api_with_the_api_role()
    {
        var manifests = await RenderAsync("--set", "trainer.workers=2");
        Assert.Equal("api", Env(Deployment(manifests, "api"))["VlaCloud__Roles"]);
        var trainer = Env(Deployment(manifests, "trainer"));
        Assert.Equal("trainer", trainer["VlaCloud__Roles"]);
        Assert.Equal("2", trainer["VlaCloud__TrainerWorkers"]);
        Assert.DoesNotContain("VlaCloud__TrainerWorkers", Env(Deployment(manifests, "api")).Keys);
    }

    [Fact]
    public async Task The_cluster_config_never_migrates_or_seeds_on_start_and_points_at_the_external_services()
    {
        var manifests = await RenderAsync(
            "--set", "postgres.connectionString=Host=pg.db;Database=vlc",
            "--set", "redis.connectionString=redis.cache:6379",
            "--set", "artifacts.s3.serviceUrl=http://minio.storage:9000",
            "--set", "artifacts.s3.accessKey=AK", "--set", "artifacts.s3.secretKey=SK");
        var config = manifests.Single(m => (string)m["kind"]! == "ConfigMap" && (string)m["metadata"]!["name"]! == "vlc-vlacloud")["data"]!;
        Assert.Equal("false", (string)config["VlaCloud__MigrateOnStart"]!);
        Assert.Equal("false", (string)config["VlaCloud__SeedDemo"]!);
        Assert.Equal("s3", (string)config["VlaCloud__Artifacts__Store"]!);
        Assert.Equal("http://minio.storage:9000", (string)config["VlaCloud__Artifacts__ServiceUrl"]!);

        var secret = manifests.Single(m => (string)m["kind"]! == "Secret" && (string)m["metadata"]!["name"]! == "vlc-vlacloud")["data"]!;
        string Decode(string key) => Encoding.UTF8.GetString(Convert.FromBase64String((string)secret[key]!));
        Assert.Equal("Host=pg.db;Database=vlc", Decode("ConnectionStrings__Registry"));
        Assert.Equal("redis.cache:6379", Decode("ConnectionStrings__Redis"));
        Assert.Equal(("AK", "SK"), (Decode("VlaCloud__Artifacts__AccessKey"), Decode("VlaCloud__Artifacts__SecretKey")));

        var sources = Container(Deployment(manifests, "api"))["envFrom"]!.AsArray();
        Assert.Contains(sources, s => (string?)s!["secretRef"]?["name"] == "vlc-vlacloud");
        Assert.Contains(sources, s => (string?)s!["configMapRef"]?["name"] == "vlc-vlacloud");
    }

    [Fact]
    public async Task An_existing_secret_replaces_the_secrets_the_chart_would_write()
    {
        var manifests = await RenderAsync("--set", "existingSecret=vlacloud-credentials");
        Assert.DoesNotContain(manifests, m => (string)m["kind"]! == "Secret");
        var job = manifests.Single(m => (string)m["kind"]! == "Job");
        foreach (var workload in new[] { Deployment(manifests, "api"), Deployment(manifests, "trainer"), job })
            Assert.Contains(Container(workload)["envFrom"]!.AsArray(), s => (string?)s!["secretRef"]?["name"] == "vlacloud-credentials");
    }

    [Fact]
    public async Task The_ingress_keeps_websockets_open_and_publishes_only_the_http_port()
    {
        var manifests = await RenderAsync("--set", "ingress.enabled=true", "--set", "ingress.websocketTimeoutSeconds=7200");
        var ingress = manifests.Single(m => (string)m["kind"]! == "Ingress");
        var annotations = ingress["metadata"]!["annotations"]!;
        Assert.Equal("7200", (string)annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]!);
        Assert.Equal("7200", (string)annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]!);
        var backends = ingress["spec"]!["rules"]!.AsArray()
            .SelectMany(r => r!["http"]!["paths"]!.AsArray()).Select(p => (string)p!["backend"]!["service"]!["port"]!["name"]!);
        Assert.All(backends, port => Assert.Equal("http", port));
    }

    [Fact]
    public async Task The_pod_disruption_budget_and_autoscaler_select_and_scale_the_api_deployment()
    {
        var manifests = await RenderAsync();
        var api = Deployment(manifests, "api");
        var pdb = manifests.Single(m => (string)m["kind"]! == "PodDisruptionBudget");
        Assert.True(JsonNode.DeepEquals(api["spec"]!["selector"]!["matchLabels"], pdb["spec"]!["selector"]!["matchLabels"]));
        var hpa = manifests.Single(m => (string)m["kind"]! == "HorizontalPodAutoscaler");
        Assert.Equal((string)api["metadata"]!["name"]!, (string)hpa["spec"]!["scaleTargetRef"]!["name"]!);
        // The autoscaler owns the replica count; a fixed one would fight it on every upgrade.
        Assert.Null(api["spec"]!["replicas"]);
    }

    /// <summary>Renders the chart as release "vlc" and returns each manifest as JSON.</summary>
    private static async Task<List<JsonObject>> RenderAsync(params string[] arguments)
    {
        var (exitCode, output) = await ExternalTools.RunAsync(ExternalTools.Helm, ["template", "vlc", Chart, "-f", CiDefaults, .. arguments]);
        Assert.True(exitCode == 0, output);
        var deserializer = new DeserializerBuilder().Build();
        var toJson = new SerializerBuilder().JsonCompatible().Build();
        var manifests = new List<JsonObject>();
        foreach (var document in output.Split("\n---", StringSplitOptions.RemoveEmptyEntries))
        {
            var yaml = deserializer.Deserialize<object?>(document);
            if (yaml is null) continue;
            manifests.Add(JsonNode.Parse(toJson.Serialize(yaml))!.AsObject());
        }
        Assert.NotEmpty(manifests);
        return manifests;
    }

    private static JsonObject Deployment(IEnumerable<JsonObject> manifests, string component) =>
        manifests.Single(m => (string)m["kind"]! == "Deployment" && (string)m["metadata"]!["name"]! == $"vlc-vlacloud-{component}");

    private static JsonNode Container(JsonObject workload) =>
        Assert.Single(workload["spec"]!["template"]!["spec"]!["containers"]!.AsArray())!;

    private static Dictionary<string, string> Env(JsonObject workload) =>
        Container(workload)["env"]!.AsArray().ToDictionary(e => (string)e!["name"]!, e => (string)e!["value"]!);
}
