using System.Formats.Tar;
using System.IO.Compression;

namespace VlaCloud.Datasets;

/// <summary>Limits that keep a hostile or broken archive from filling the disk.</summary>
/// <param name="MaxTotalBytes">Most bytes all extracted files may add up to.</param>
/// <param name="MaxEntries">Most files and folders.</param>
/// <param name="MaxEntryBytes">Most bytes of one file.</param>
/// <param name="TarOnly">Only an uncompressed tar is accepted (so nothing expands past the archive's own size).</param>
/// <param name="Folder">What the target folder is called in error messages.</param>
public sealed record ArchiveLimits(long MaxTotalBytes = 20L << 30, int MaxEntries = 200_000, long MaxEntryBytes = long.MaxValue, bool TarOnly = false,
    string Folder = "dataset folder");

/// <summary>Extracts a dataset archive (.zip, .tar, .tar.gz/.tgz) safely.</summary>
public static class DatasetArchive
{
    /// <summary>
    /// Extracts <paramref name="archivePath"/> into the empty folder <paramref name="target"/>. The format is
    /// recognised from the file's first bytes, not its name. Entries that would land outside the target
    /// (absolute paths, <c>..</c>), links and device files are refused, as is anything past <paramref name="limits"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">The archive is not zip/tar/tar.gz, is corrupt, or breaks a rule; the message says which.</exception>
    public static async Task ExtractAsync(string archivePath, string target, ArchiveLimits limits, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(target);
        var fullTarget = Path.GetFullPath(target) + Path.DirectorySeparatorChar;
        var kind = await SniffAsync(archivePath, cancellationToken);
        if (limits.TarOnly && kind != ArchiveKind.Tar) throw new InvalidDataException("The file is not an uncompressed tar archive.");
        try
        {
            switch (kind)
            {
                case ArchiveKind.Zip:
                    await ExtractZipAsync(archivePath, fullTarget, limits, cancellationToken);
                    break;
                case ArchiveKind.Tar or ArchiveKind.TarGz:
                    await ExtractTarAsync(archivePath, kind == ArchiveKind.TarGz, fullTarget, limits, cancellationToken);
                    break;
                default:
                    throw new InvalidDataException("The file is not a zip, tar or tar.gz archive.");
            }
        }
        catch (Exception e) when (e is not InvalidDataException and not OperationCanceledException and (IOException or FormatException or ArgumentException))
        {
            throw new InvalidDataException($"The archive is corrupt: {e.Message}", e);
        }
    }

    private enum ArchiveKind { Unknown, Zip, Tar, TarGz }

    private static async Task<ArchiveKind> SniffAsync(string path, CancellationToken cancellationToken)
    {
        var head = new byte[512];
        await using var stream = File.OpenRead(path);
        var read = await stream.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken);
        if (read >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) return ArchiveKind.Zip;
        if (read >= 2 && head[0] == 0x1f && head[1] == 0x8b) return ArchiveKind.TarGz;
        // ustar magic at offset 257 (POSIX and GNU tar).
        if (read >= 262 && head[257] == 'u' && head[258] == 's' && head[259] == 't' && head[260] == 'a' && head[261] == 'r') return ArchiveKind.Tar;
        return ArchiveKind.Unknown;
    }

    private static async Task ExtractZipAsync(string path, string target, ArchiveLimits limits, CancellationToken cancellationToken)
    {
        using var zip = ZipFile.OpenRead(path);
        if (zip.Entries.Count > limits.MaxEntries) throw new InvalidDataException($"The archive has {zip.Entries.Count} entries; the limit is {limits.MaxEntries}.");
        long total = 0;
        foreach (var entry in zip.Entries)
        {
            var destination = SafeDestination(target, entry.FullName, limits);
            if (entry.FullName.EndsWith('/'))
            {
                Directory.CreateDirectory(destination);
                continue;
            }
            total += entry.Length;
            if (total > limits.MaxTotalBytes) throw new InvalidDataException($"The archive expands past the limit of {limits.MaxTotalBytes} bytes.");
            if (entry.Length > limits.MaxEntryBytes) throw new InvalidDataException($"The archive entry '{entry.FullName}' is {entry.Length} bytes; the limit is {limits.MaxEntryBytes}.");
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            await using var source = entry.Open();
            await using var file = File.Create(destination);
            await CopyLimitedAsync(source, file, entry.Length, entry.FullName, cancellationToken);
        }
    }

    private static async Task ExtractTarAsync(string path, bool gzip, string target, ArchiveLimits limits, CancellationToken cancellationToken)
    {
        await using var raw = File.OpenRead(path);
        await using var stream = gzip ? new GZipStream(raw, CompressionMode.Decompress) : (Stream)raw;
        await using var reader = new TarReader(stream);
        long total = 0;
        var entries = 0;
        while (await reader.GetNextEntryAsync(copyData: false, cancellationToken) is { } entry)
        {
            if (++entries > limits.MaxEntries) throw new InvalidDataException($"The archive has more than {limits.MaxEntries} entries.");
            switch (entry.EntryType)
            {
                case TarEntryType.Directory:
                    Directory.CreateDirectory(SafeDestination(target, entry.Name, limits));
                    break;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    var destination = SafeDestination(target, entry.Name, limits);
                    total += entry.Length;
                    if (total > limits.MaxTotalBytes) throw new InvalidDataException($"The archive expands past the limit of {limits.MaxTotalBytes} bytes.");
                    if (entry.Length > limits.MaxEntryBytes) throw new InvalidDataException($"The archive entry '{entry.Name}' is {entry.Length} bytes; the limit is {limits.MaxEntryBytes}.");
                    Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
                    await using (var file = File.Create(destination))
                    {
                        if (entry.DataStream is not null) await CopyLimitedAsync(entry.DataStream, file, entry.Length, entry.Name, cancellationToken);
                    }
                    break;
                case TarEntryType.GlobalExtendedAttributes or TarEntryType.ExtendedAttributes:
                    break;
                default:
                    throw new InvalidDataException($"The archive entry '{entry.Name}' is a {entry.EntryType}; only files and folders are accepted.");
            }
        }
    }

    /// <summary>Copies at most the declared length: a zip entry that inflates past its header's size is a bomb, not a dataset.</summary>
    private static async Task CopyLimitedAsync(Stream source, Stream destination, long declared, string name, CancellationToken cancellationToken)
    {
        var buffer = new byte[81920];
        long copied = 0;
        int read;
        while ((read = await source.ReadAsync(buffer, cancellationToken)) > 0)
        {
            copied += read;
            if (copied > declared) throw new InvalidDataException($"The archive entry '{name}' is larger than its declared size.");
            await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
        }
    }

    private static string SafeDestination(string target, string entryName, ArchiveLimits limits)
    {
        var destination = Path.GetFullPath(Path.Combine(target, entryName));
        if (Path.IsPathRooted(entryName) || !destination.StartsWith(target, StringComparison.Ordinal))
            throw new InvalidDataException($"The archive entry '{entryName}' points outside the {limits.Folder}.");
        if (entryName.Split('/', '\\').Contains(".."))
            throw new InvalidDataException($"The archive entry '{entryName}' has a '..' in its path; entries must be plain relative paths.");
        return destination;
    }
}
