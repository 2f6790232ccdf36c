# syntax=docker/dockerfile:1
# VlaCloud host image: serves the API, runs trainer jobs, or migrates (`--migrate`), by configuration.
#   CPU (default):  docker build -t vlacloud:0.1.0 .
#   GPU nodes:      docker build --build-arg TORCH=cuda -t vlacloud:0.1.0-cuda .
# The publish line below is run by tests/VlaCloud.Deploy.Tests (DockerfileTests) on every test run.
ARG TORCH=cpu

FROM mcr.microsoft.com/dotnet/sdk:10.0-noble AS build
ARG TORCH
WORKDIR /src
COPY . .
RUN dotnet publish src/VlaCloud.Api/VlaCloud.Api.csproj -c Release -o /app -p:TorchBackend=${TORCH} -p:UseAppHost=false

# Ubuntu 24.04 ships libstdc++ with GLIBCXX_3.4.32, so libLibTorchSharp.so loads unpatched.
FROM mcr.microsoft.com/dotnet/aspnet:10.0-noble AS runtime
# ffmpeg decodes LeRobot dataset videos; curl is the health check's client.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app .
# Kubernetes runs migrations as a hook Job and creates tenants through the API: neither happens on start.
# The NVIDIA variables let the container toolkit expose the GPUs to a cuda image (ignored on CPU). Passive OpenMP
# waiting keeps libtorch's idle CPU threads from spinning on cores the pod shares with request handling.
ENV ASPNETCORE_HTTP_PORTS=8080 \
    OMP_WAIT_POLICY=PASSIVE \
    VlaCloud__MigrateOnStart=false \
    VlaCloud__SeedDemo=false \
    VlaCloud__Observability__LogFormat=json \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
EXPOSE 8080
# The images' non-root "app" user (uid 1654); the Helm chart's securityContext uses the same id.
USER $APP_UID
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["dotnet", "VlaCloud.Api.dll"]
