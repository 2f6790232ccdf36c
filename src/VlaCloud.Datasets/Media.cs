using System.Diagnostics;
using System.Globalization;
using SkiaSharp;

namespace VlaCloud.Datasets;

/// <summary>An RGB image, 8 bits per channel, rows of height × width × 3 bytes (HWC).</summary>
/// <param name="Width">Width in pixels.</param>
/// <param name="Height">Height in pixels.</param>
/// <param name="Pixels">HWC bytes, length width × height × 3.</param>
public sealed record RgbImage(int Width, int Height, byte[] Pixels)
{
    /// <summary>Decodes PNG or JPEG bytes; null when they are not a readable image.</summary>
    public static RgbImage? Decode(ReadOnlySpan<byte> encoded)
    {
        // SKBitmap.Decode throws on bytes no codec recognises; asking for a codec first returns null instead.
        using var data = SKData.CreateCopy(encoded);
        using var codec = SKCodec.Create(data);
        if (codec is null) return null;
        using var bitmap = SKBitmap.Decode(codec);
        if (bitmap is null) return null;
        using var rgba = bitmap.ColorType == SKColorType.Rgba8888 ? null : bitmap.Copy(SKColorType.Rgba8888);
        var source = rgba ?? bitmap;
        var rgbaBytes = source.GetPixelSpan();
        var pixels = new byte[source.Width * source.Height * 3];
        for (int i = 0, j = 0; j < pixels.Length; i += 4, j += 3)
        {
            pixels[j] = rgbaBytes[i];
            pixels[j + 1] = rgbaBytes[i + 1];
            pixels[j + 2] = rgbaBytes[i + 2];
        }
        return new RgbImage(source.Width, source.Height, pixels);
    }
}

/// <summary>Reads mp4 (AV1, H.264, …) videos through the ffmpeg command line.</summary>
public static class VideoReader
{
    /// <summary>Width, height and frame count of the first video stream, or an error message.</summary>
    public static async Task<(int Width, int Height, int Frames, double Duration)> ProbeAsync(string path, CancellationToken cancellationToken)
    {
        var output = await RunAsync("ffprobe",
            ["-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=width,height,nb_read_packets:format=duration", "-of", "default=noprint_wrappers=1", path],
            cancellationToken);
        var values = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split('=', 2)).Where(p => p.Length == 2).GroupBy(p => p[0]).ToDictionary(g => g.Key, g => g.First()[1]);
        int Int(string key) => values.TryGetValue(key, out var v) && int.TryParse(v, CultureInfo.InvariantCulture, out var i) ? i : throw new InvalidDataException($"ffprobe did not report {key}.");
        var duration = values.TryGetValue("duration", out var d) && double.TryParse(d, CultureInfo.InvariantCulture, out var seconds) ? seconds : 0;
        return (Int("width"), Int("height"), Int("nb_read_packets"), duration);
    }

    /// <summary>Decodes frames in [<paramref name="from"/>, <paramref name="from"/> + count/fps) as RGB.</summary>
    public static async Task<RgbImage[]> ReadFramesAsync(string path, double from, int count, double fps, int width, int height, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("ffmpeg")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "-v", "error", "-ss", from.ToString("0.######", CultureInfo.InvariantCulture), "-i", path,
                     "-frames:v", count.ToString(CultureInfo.InvariantCulture), "-f", "rawvideo", "-pix_fmt", "rgb24", "-" })
            start.ArgumentList.Add(arg);
        using var process = StartOrExplain(start);
        var frameBytes = width * height * 3;
        var frames = new List<RgbImage>(count);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        var stdout = process.StandardOutput.BaseStream;
        while (frames.Count < count)
        {
            var buffer = new byte[frameBytes];
            var read = 0;
            while (read < frameBytes)
            {
                var n = await stdout.ReadAsync(buffer.AsMemory(read), cancellationToken);
                if (n == 0) break;
                read += n;
            }
            if (read < frameBytes) break;
            frames.Add(new RgbImage(width, height, buffer));
        }
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0) throw new InvalidDataException($"ffmpeg could not decode {Path.GetFileName(path)}: {(await stderr).Trim()}");
        return frames.ToArray();
    }

    private static async Task<string> RunAsync(string tool, string[] args, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = StartOrExplain(start);
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0) throw new InvalidDataException((await stderr).Trim());
        return await stdout;
    }

    private static Process StartOrExplain(ProcessStartInfo start)
    {
        try
        {
            return Process.Start(start) ?? throw new InvalidOperationException($"{start.FileName} did not start.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"{start.FileName} is not installed; video datasets need ffmpeg (`apt-get install ffmpeg`, done by `bash .ci/services start`).", e);
        }
    }
}
