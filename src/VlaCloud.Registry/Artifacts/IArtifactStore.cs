namespace VlaCloud.Registry.Artifacts;

/// <summary>A stored blob: its content address, size and the store's URI for it.</summary>
/// <param name="Sha256">SHA-256 of the content, lower-case hex.</param>
/// <param name="SizeBytes">Size in bytes.</param>
/// <param name="Uri">Where the store keeps it (<c>file://…</c> or <c>s3://…</c>).</param>
public sealed record ArtifactInfo(string Sha256, long SizeBytes, string Uri);

/// <summary>A blob as the store lists it.</summary>
/// <param name="Sha256">Its hash.</param>
/// <param name="SizeBytes">Its size.</param>
/// <param name="LastModified">When its bytes were last written (a put of the same bytes may renew it).</param>
public sealed record StoredBlob(string Sha256, long SizeBytes, DateTimeOffset LastModified);

/// <summary>
/// Content-addressed blob storage for checkpoints and datasets. Blobs are opaque here: the registry
/// never looks inside a checkpoint file.
/// </summary>
public interface IArtifactStore
{
    /// <summary>
    /// Stores <paramref name="content"/> under its SHA-256. The blob becomes visible only complete
    /// (written aside, then renamed or committed); putting the same bytes twice stores them once.
    /// </summary>
    Task<ArtifactInfo> PutAsync(Stream content, CancellationToken cancellationToken);

    /// <summary>The blob with this hash, or null when the store does not have it.</summary>
    Task<ArtifactInfo?> GetInfoAsync(string sha256, CancellationToken cancellationToken);

    /// <summary>
    /// Opens the blob for reading after checking that its bytes still hash to <paramref name="sha256"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">The store does not have it.</exception>
    /// <exception cref="ArtifactCorruptedException">Its bytes no longer match the hash.</exception>
    Task<Stream> OpenReadAsync(string sha256, CancellationToken cancellationToken);

    /// <summary>
    /// Opens the blob for reading as stored, seekable, without hashing it first: for a reader that already has the hash
    /// from the registry and checks the bytes as they pass (<see cref="Sha256CheckingStream"/>), where
    /// <see cref="OpenReadAsync"/> reads the whole blob before its first byte. A store that must copy the blob to have a
    /// seekable stream (S3) hashes it on that copy anyway, so the default is the checked open.
    /// </summary>
    /// <exception cref="FileNotFoundException">The store does not have it.</exception>
    Task<Stream> OpenStoredAsync(string sha256, CancellationToken cancellationToken) => OpenReadAsync(sha256, cancellationToken);

    /// <summary>Every stored blob, in no particular order (for garbage collection).</summary>
    IAsyncEnumerable<StoredBlob> ListAsync(CancellationToken cancellationToken);

    /// <summary>Deletes the blob; nothing when the store does not have it.</summary>
    Task DeleteAsync(string sha256, CancellationToken cancellationToken);
}

/// <summary>A stored blob whose bytes no longer match its hash; it must not be loaded.</summary>
/// <remarks>The message names the blob by its hash only: it reaches tenants, and the store's location is not theirs to know.</remarks>
public sealed class ArtifactCorruptedException(string sha256, string actual, string uri)
    : Exception($"Artifact {sha256} is corrupted in the artifact store: its bytes hash to {actual}. Put it again.")
{
    /// <summary>Where the store keeps the blob, for the operator's logs.</summary>
    public string Uri { get; } = uri;

    /// <summary>The expected hash.</summary>
    public string ExpectedSha256 { get; } = sha256;

    /// <summary>What the stored bytes hash to.</summary>
    public string ActualSha256 { get; } = actual;
}

/// <summary>Settings of the artifact store, section <c>VlaCloud:Artifacts</c> (plus <c>VlaCloud:ArtifactsPath</c>).</summary>
public sealed class ArtifactStoreOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "VlaCloud:Artifacts";

    /// <summary><c>filesystem</c> (default) or <c>s3</c>.</summary>
    public string Store { get; set; } = "filesystem";

    /// <summary>Root folder of the filesystem store; relative paths are under the content root.</summary>
    public string Path { get; set; } = ".local/artifacts";

    /// <summary>S3 bucket.</summary>
    public string? Bucket { get; set; }

    /// <summary>Key prefix inside the bucket.</summary>
    public string Prefix { get; set; } = "artifacts/";

    /// <summary>Endpoint of an S3-compatible service (MinIO, Ceph, R2); null for AWS.</summary>
    public string? ServiceUrl { get; set; }

    /// <summary>AWS region; also sent to S3-compatible services.</summary>
    public string Region { get; set; } = "us-east-1";

    /// <summary>Path-style addressing, which most S3-compatible services need.</summary>
    public bool ForcePathStyle { get; set; } = true;

    /// <summary>Access key id; null to use the AWS SDK's default credential chain.</summary>
    public string? AccessKey { get; set; }

    /// <summary>Secret access key, with <see cref="AccessKey"/>.</summary>
    public string? SecretKey { get; set; }

    /// <summary>
    /// How old an artifact nobody references (put but never registered, a dataset's or checkpoint's claim that was
    /// dropped) must be before garbage collection deletes it, and how old a blob no artifact row names.
    /// </summary>
    public TimeSpan UnreferencedGracePeriod { get; set; } = TimeSpan.FromHours(24);
}
