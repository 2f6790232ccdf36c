namespace VlaCloud.Policy;

/// <summary>A checkpoint that cannot be used: missing, corrupted or not matching its config. The message names the file or tensor.</summary>
public sealed class CheckpointException(string message) : Exception(message);
