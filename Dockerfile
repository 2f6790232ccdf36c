# syntax=docker/dockerfile:1
# VlaCloud host image. CPU libtorch by default; GPU nodes: docker build --build-arg TORCH=cuda .
ARG TORCH=cpu

FROM mcr.microsoft.com/dotnet/sdk:10.0-noble AS build
ARG TORCH
WORKDIR /src
COPY . .
RUN dotnet publish src/VlaCloud.Api/VlaCloud.Api.csproj -c Release -o /app -p:TorchBackend=${TORCH} -p:UseAppHost=false

# Ubuntu 24.04 ships libstdc++ with GLIBCXX_3.4.32, so libLibTorchSharp.so loads unpatched.
FROM mcr.microsoft.com/dotnet/aspnet:10.0-noble AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg curl && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app .
ENV ASPNETCORE_URLS=http://0.0.0.0:8080 \
    VlaCloud__MigrateOnStart=false \
    VlaCloud__SeedDemo=false
EXPOSE 8080
USER app
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["dotnet", "VlaCloud.Api.dll"]
