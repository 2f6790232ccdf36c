using VlaCloud.Datasets;
using VlaCloud.Registry.Artifacts;

namespace VlaCloud.Training.Jobs;

/// <summary>Dataset archives from the artifact store, extracted once per trainer into its work folder.</summary>
public static class DatasetFiles
{
    /// <summary>
    /// The folder holding the extracted archive <paramref name="sha256"/>: extracted beside it and moved into
    /// place, so a process that dies half-way never leaves a folder that looks complete.
    /// </summary>
    /// <exception cref="InvalidDataException">The archive is not a safe zip/tar/tar.gz.</exception>
    public static async Task<string> EnsureExtractedAsync(IArtifactStore store, string sha256, FineTuningJobOptions options, CancellationToken cancellationToken)
    {
        var root = Path.Combine(options.WorkPath, "datasets");
        var folder = Path.Combine(root, sha256);
        if (Directory.Exists(folder)) return folder;
        Directory.CreateDirectory(root);
        var temp = Path.Combine(root, $".{sha256}-{Guid.NewGuid():N}");
        var archive = temp + ".archive";
        try
        {
            await using (var source = await store.OpenReadAsync(sha256, cancellationToken))
            await using (var file = File.Create(archive))
                await source.CopyToAsync(file, cancellationToken);
            await DatasetArchive.ExtractAsync(archive, temp, new ArchiveLimits(options.MaxDatasetBytes), cancellationToken);
            try
            {
                Directory.Move(temp, folder);
            }
            catch (IOException) when (Directory.Exists(folder))
            {
                // Another job extracted the same archive first: theirs is identical.
            }
            return folder;
        }
        finally
        {
            if (File.Exists(archive)) File.Delete(archive);
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
    }
}
