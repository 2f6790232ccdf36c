using VlaCloud.Contracts;

namespace VlaCloud.Client;

/// <summary>A finished <see cref="VlaCloudClient.DownloadCheckpointAsync"/>.</summary>
/// <param name="Checkpoint">The checkpoint downloaded.</param>
/// <param name="Path">The full path of the verified file.</param>
/// <param name="ResumedFromBytes">Bytes a previous, interrupted download had already written (0 for a fresh one).</param>
public sealed record CheckpointDownload(CheckpointResponse Checkpoint, string Path, long ResumedFromBytes);
