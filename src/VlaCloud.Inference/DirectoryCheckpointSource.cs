namespace VlaCloud.Inference;

/// <summary>
/// Checkpoints already unpacked on local disk, one folder per checkpoint id under a root (the host fills
/// the folders from the artifact store; tools and tests point it at folders they wrote).
/// </summary>
public sealed class DirectoryCheckpointSource(string root) : ICheckpointSource
{
    /// <inheritdoc />
    public Task<string> GetDirectoryAsync(string checkpoint, CancellationToken cancellationToken)
    {
        if (checkpoint.Length == 0 || checkpoint.IndexOfAny([.. Path.GetInvalidFileNameChars(), '.']) >= 0)
            throw new ModelLoadException(checkpoint, "the name is not a valid checkpoint folder name");
        var directory = Path.Combine(root, checkpoint);
        return Directory.Exists(directory)
            ? Task.FromResult(directory)
            : throw new ModelLoadException(checkpoint, $"no folder {directory}");
    }
}
