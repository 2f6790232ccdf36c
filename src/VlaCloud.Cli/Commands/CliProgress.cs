namespace VlaCloud.Cli.Commands;

/// <summary>
/// Reports progress on the reporting thread. <see cref="Progress{T}"/> would post to the thread pool,
/// so the bar could lag behind (or finish after) the work it shows.
/// </summary>
internal sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
