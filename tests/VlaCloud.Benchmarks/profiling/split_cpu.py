#!/usr/bin/env python3
"""Splits CPU samples of the host process (from `perf script` or a dotnet-trace speedscope file) into the model forward
and the per-request overhead groups of issue 23, and lists the top frames by exclusive CPU outside the forward.

  perf script -i perf.data -F comm,tid,period,ip,sym,dso | python3 split_cpu.py perf - CPU_MS_PER_REQUEST
  python3 split_cpu.py speedscope trace.speedscope.json

CPU_MS_PER_REQUEST (the host's CPU per served request in the traced window, as `serving profile` prints it) turns the
shares into CPU ms per request when given (perf only: perf samples every CPU cycle of the process, native code and
kernel included; the speedscope file of `dotnet-trace collect --profile dotnet-sampled-thread-time` sees managed code
only, so it splits the managed share of the CPU).
"""
import collections, json, re, sys

# Which frame makes a sample part of the raw model forward: everything under SampleActions (and the point guides asked
# next to it) is what raw_cpu_ms_per_sample_batch1 also measures; libtorch and OpenMP frames without a managed caller
# (their unwinding stops in the native library) are the forward's too.
FORWARD = re.compile(r"VlaPolicy[.:]+(SampleActions|GeneratePointGuides|GenerateSpatial)|libtorch|libc10|libgomp|libomp|libiomp|LibTorchSharp|libmkl|libopenblas|TorchSharp\.")

# Overhead groups, tried from the leaf towards the root; the first group any frame matches takes the sample, so a JSON
# writer that ends in a socket write counts as Kestrel only when no JSON frame is on the stack below... (leaf first).
GROUPS = [
    ("thread pool: idle workers spinning/parking (LowLevelLifoSemaphore)", r"LowLevelLifoSemaphore"),
    ("file watcher (benchmark only: the content root is the repository)", r"FileSystemWatcher"),
    ("GC", r"gc_heap::|WKS::|SVR::|GCHeap|GarbageCollect|gc_heap|GCToEEInterface|memset_repmovs|alloc_more_space"),
    ("JIT/tiering", r"libclrjit|TieredCompilation|CallCountingManager|jit"),
    ("JSON (de)serialisation", r"System\.Text\.Json|JsonSerializer|Utf8JsonWriter|Utf8JsonReader|ActResponse|ObservationInput"),
    ("image decode / observation binding", r"ObservationBinder|ImageDecoder|Convert[.:]+FromBase64|Base64|CameraImage|SixLabors|ImageSharp|OpenPiObservationMapper"),
    ("Redis", r"StackExchange\.Redis|RequestRateLimiter|TenantRateLimitFilter|ComputeCounter|UsageMeter|CheckComputeQuota|Pipelines\.Sockets\.Unofficial"),
    ("EF/Postgres", r"EntityFrameworkCore|Npgsql|RegistryDbContext|CheckpointRegistry"),
    ("auth/key lookup", r"ApiKeyAuthenticationHandler|AuthenticationMiddleware|AuthorizationMiddleware|AuthenticationHandler|ApiKeyCache|Authorization\.|Claims|ScopePolic|CurrentTenant|FailedAuthLimiter|PolicyEvaluator"),
    ("logging/telemetry", r"Microsoft\.Extensions\.Logging|System\.Diagnostics\.(Activity|Metrics|DiagnosticListener|DiagnosticSource)|OpenTelemetry|Prometheus|VlaCloudTelemetry|TenantLogScope|HostingApplicationDiagnostics|Observability|LoggerMessage|MeterListener|Histogram|Counter`"),
    ("worker hand-off (engine, queue, thread wake-ups)", r"InferenceEngine|DeviceWorker|FairShare|ModelCache|WorkItem|TaskCompletionSource|Monitor\.|ObjectNative|SyncBlock|AwareLock|CLREvent|LowLevelLifoSemaphore|PortableThreadPool|WorkerThread|futex|pthread_cond|ThreadPoolWorkQueue|ManualResetEventSlim|SemaphoreSlim"),
    ("act endpoint (ActionService, routing, results)", r"ActionService|ActApi|ResolutionCache|UsageBuffer|Microsoft\.AspNetCore\.Http\.(RequestDelegateFactory|Generated)|EndpointMiddleware|Routing|Results|ExceptionHandler|StatusCodePages|WebSocketMiddleware|IdempotencyMiddleware|Microsoft\.AspNetCore\.Builder|DependencyInjection"),
    ("Kestrel/HTTP/sockets", r"Kestrel|System\.Net\.Sockets|System\.IO\.Pipelines|Microsoft\.AspNetCore\.Server|Http1Connection|HttpProtocol|SocketAsyncEngine|epoll|tcp_|sock_|__sys_|inet_|ip_|skb|Microsoft\.AspNetCore\.Hosting|System\.Net\.Http|HttpRequestHeaders|HttpResponseHeaders"),
]
GROUPS = [(name, re.compile(pattern)) for name, pattern in GROUPS]


MANAGED = re.compile(r"perf-\d+\.map|\.dll\]|\[System\.|\[Microsoft\.|\[VlaCloud\.")


def classify(stack, thread=""):
    """stack: frames leaf first. Returns (group, leaf)."""
    if any(FORWARD.search(f) for f in stack):
        return "model forward", stack[0]
    # The inference thread runs managed code only around the forward; a stack of its without a managed frame is native
    # code whose unwinding stopped early, i.e. libtorch (its malloc/free, memcpy) inside SampleActions.
    if thread.startswith("vlacloud-infer") and not any(MANAGED.search(f) for f in stack):
        return "model forward", stack[0]
    for frame in stack:
        for name, pattern in GROUPS:
            if pattern.search(frame):
                return name, stack[0]
    return "other (runtime, kernel, unattributed)", stack[0]


def perf_samples(lines):
    """Yields (weight, frames leaf first, thread) from `perf script -F comm,tid,period,ip,sym,dso`."""
    header, frames = None, []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if header is not None:
                yield header[1], frames, header[0]
            header, frames = None, []
            continue
        if header is None:
            parts = line.split()
            # comm may contain spaces: the last two fields are tid and period
            header = (" ".join(parts[:-2]), int(parts[-1]))
            continue
        m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)$", line)
        if m:
            sym, dso = m.group(1), m.group(2)
            frames.append(f"{sym} [{dso.rsplit('/', 1)[-1]}]")
    if header is not None:
        yield header[1], frames, header[0]


def speedscope_samples(path):
    data = json.load(open(path))
    names = [f["name"] for f in data["shared"]["frames"]]
    for profile in data["profiles"]:
        thread = profile.get("name", "")
        if profile["type"] == "evented":
            stack, opened = [], []
            last = profile["startValue"]
            for event in profile["events"]:
                at = event["at"]
                if stack and at > last:
                    yield at - last, [names[i] for i in reversed(stack)], thread
                last = at
                if event["type"] == "O":
                    stack.append(event["frame"])
                else:
                    stack.pop()
        else:
            for sample, weight in zip(profile["samples"], profile["weights"]):
                yield weight, [names[i] for i in reversed(sample)], thread


def main():
    kind, source = sys.argv[1], sys.argv[2]
    requests = float(sys.argv[3]) if len(sys.argv) > 3 else None
    samples = perf_samples(sys.stdin if source == "-" else open(source)) if kind == "perf" else speedscope_samples(source)
    groups, leaves, threads = collections.Counter(), collections.Counter(), collections.Counter()
    inclusive = collections.Counter()
    total = 0
    for weight, stack, thread in samples:
        if not stack:
            continue
        if kind == "speedscope":
            # EventPipe's thread-time samples mark a thread running managed code with a CPU_TIME leaf and one in native
            # code (torch, or blocked in a wait: they cannot be told apart) with UNMANAGED_CODE_TIME; only the former is
            # CPU for sure, so this mode splits managed CPU only.
            if stack[0] != "CPU_TIME" or len(stack) < 2:
                continue
            stack = stack[1:]
        group, leaf = classify(stack, thread)
        groups[group] += weight
        total += weight
        threads[(re.sub(r"[-_ ]?\d+$", "", thread), group == "model forward")] += weight
        if group != "model forward":
            leaves[leaf] += weight
            for frame in set(stack):
                inclusive[frame] += weight
    overhead = total - groups["model forward"]
    unit = "samples" if kind == "perf" else "ms"
    print(f"total {total:.0f} {unit}; model forward {groups['model forward']:.0f} ({100 * groups['model forward'] / total:.1f} %); outside it {overhead:.0f}")
    print()
    print(f"| group | share of host CPU | share of overhead |" + (" ms per request |" if requests else ""))
    print("|---|---|---|" + ("---|" if requests else ""))
    for group, weight in groups.most_common():
        row = f"| {group} | {100 * weight / total:.1f} % | {'' if group == 'model forward' else f'{100 * weight / overhead:.1f} %'} |"
        print(row + (f" {requests * weight / total:.2f} |" if requests else ""))
    print()
    print("| # | frame (exclusive, outside the forward) | share of overhead |")
    print("|---|---|---|")
    for n, (leaf, weight) in enumerate(leaves.most_common(15), 1):
        print(f"| {n} | `{shorten(leaf)}` | {100 * weight / overhead:.1f} % |")
    print()
    print("inclusive, outside the forward (top 40):")
    for frame, weight in inclusive.most_common(40):
        print(f"  {100 * weight / overhead:5.1f} %  {shorten(frame)}")
    print()
    print("threads (name, in forward): share of host CPU")
    for (thread, forward), weight in threads.most_common(20):
        print(f"  {100 * weight / total:5.1f} %  {thread} {'forward' if forward else ''}")


def shorten(frame):
    frame = re.sub(r"\(.*\)(\[[A-Za-z0-9]+\])?", "", frame)
    return frame[:140]


if __name__ == "__main__":
    main()
