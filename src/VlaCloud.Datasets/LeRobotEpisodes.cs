namespace VlaCloud.Datasets;

/// <summary>Where one episode's frames are.</summary>
/// <param name="Index">Episode index.</param>
/// <param name="Length">Number of frames.</param>
/// <param name="Tasks">Task texts of the episode.</param>
/// <param name="DataFile">Parquet file with its frames, relative to the root.</param>
/// <param name="Videos">Per video feature: the file and the time window of this episode in it.</param>
public sealed record EpisodeInfo(int Index, int Length, IReadOnlyList<string> Tasks, string DataFile, IReadOnlyDictionary<string, VideoSegment> Videos);

/// <summary>The part of an mp4 file that holds one episode.</summary>
/// <param name="File">Video file, relative to the root.</param>
/// <param name="FromTimestamp">Start of the episode in the file, seconds.</param>
public sealed record VideoSegment(string File, double FromTimestamp);

/// <summary>The frames of one episode as plain arrays.</summary>
/// <param name="Episode">Which episode.</param>
/// <param name="TaskIndices">Task index per frame.</param>
/// <param name="States">State per frame (empty arrays when the dataset has no state).</param>
/// <param name="Actions">Action per frame.</param>
/// <param name="Images">Per camera feature, one image per frame (empty when images were not requested).</param>
public sealed record EpisodeData(EpisodeInfo Episode, int[] TaskIndices, float[][] States, float[][] Actions, IReadOnlyDictionary<string, RgbImage[]> Images);

/// <summary>The outcome of validating a dataset: what is wrong, or what it contains.</summary>
/// <param name="Issues">Every problem found, per file; empty when the dataset is valid.</param>
/// <param name="Dataset">The opened dataset when its metadata could be read (even if frames have issues).</param>
/// <param name="Statistics">Normalisation statistics, when the dataset is valid.</param>
/// <param name="SpatialAnnotationCount">Number of spatial annotation records found (0 when the optional file is absent).</param>
public sealed record DatasetInspection(IReadOnlyList<DatasetIssue> Issues, LeRobotDataset? Dataset, DatasetStatistics? Statistics, int SpatialAnnotationCount)
{
    /// <summary>Whether the dataset can be used for training.</summary>
    public bool IsValid => Issues.Count == 0 && Dataset is not null && Statistics is not null;
}
