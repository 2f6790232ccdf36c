using System.Diagnostics;
using System.Globalization;
using SkiaSharp;

namespace VlaCloud.Datasets;

/// <summary>The size bounds every decoded image is held to: API observations, dataset images and video frames.</summary>
public static class ImageLimits
{
    /// <summary>Smallest accepted side, pixels.</summary>
    public const int MinSide = 8;

    /// <summary>
    /// Largest accepted side, pixels. A 2048×2048 image decodes to 16 MB of RGBA, which any request can afford;
    /// the header of a few hundred bytes can declare far more (50000×50000 is 10 GB), so it is read first.
    /// </summary>
    public const int MaxSide = 2048;
}

/// <summary>What an encoded image's header declares, read before any pixel is decoded.</summary>
/// <param name="Format"><c>png</c> or <c>jpeg</c>.</param>
/// <param name="Width">Declared width in pixels.</param>
/// <param name="Height">Declared height in pixels.</param>
public sealed record ImageHeader(string Format, int Width, int Height);

/// <summary>How <see cref="RgbImage.Decode(ReadOnlySpan{byte}, int, int)"/> ended.</summary>
public enum ImageDecodeStatus
{
    /// <summary>The image was decoded.</summary>
    Decoded,
    /// <summary>The bytes are not a PNG or JPEG image.</summary>
    NotAnImage,
    /// <summary>The header declares more pixels than allowed; nothing was decoded.</summary>
    TooLarge,
    /// <summary>The header was fine but the pixels could not be decoded.</summary>
    Unreadable,
}

/// <summary>The outcome of a decode: the image, or the reason with what the header declared.</summary>
/// <param name="Status">How it ended.</param>
/// <param name="Header">The header, when the bytes had one.</param>
/// <param name="Image">The image, when decoded.</param>
public sealed record ImageDecoding(ImageDecodeStatus Status, ImageHeader? Header, RgbImage? Image);

/// <summary>An RGB image, 8 bits per channel, rows of height × width × 3 bytes (HWC).</summary>
/// <param name="Width">Width in pixels.</param>
/// <param name="Height">Height in pixels.</param>
/// <param name="Pixels">HWC bytes, length width × height × 3.</param>
public sealed record RgbImage(int Width, int Height, byte[] Pixels)
{
    /// <summary>Decodes PNG or JPEG bytes of at most <see cref="ImageLimits.MaxSide"/> per side; null when they are not such an image.</summary>
    public static RgbImage? Decode(ReadOnlySpan<byte> encoded) => Decode(encoded, ImageLimits.MaxSide, ImageLimits.MaxSide).Image;

    /// <summary>The header of PNG or JPEG bytes, or null when they are neither.</summary>
    public static ImageHeader? ReadHeader(ReadOnlySpan<byte> encoded)
    {
        using var data = SKData.CreateCopy(encoded);
        using var codec = SKCodec.Create(data);
        return codec is null ? null : HeaderOf(codec);
    }

    /// <summary>
    /// Decodes PNG or JPEG bytes whose header declares at most <paramref name="maxWidth"/> × <paramref name="maxHeight"/>
    /// pixels. The header is read first and a larger image is refused from it, before any pixel buffer exists.
    /// </summary>
    public static ImageDecoding Decode(ReadOnlySpan<byte> encoded, int maxWidth, int maxHeight)
    {
        // SKBitmap.Decode throws on bytes no codec recognises; asking for a codec first returns null instead.
        using var data = SKData.CreateCopy(encoded);
        using var codec = SKCodec.Create(data);
        if (codec is null || HeaderOf(codec) is not { } header) return new ImageDecoding(ImageDecodeStatus.NotAnImage, null, null);
        if (header.Width < 1 || header.Height < 1 || header.Width > maxWidth || header.Height > maxHeight)
            return new ImageDecoding(ImageDecodeStatus.TooLarge, header, null);

        // Straight into RGBA (what SKBitmap.Decode then Copy gave: premultiplied, no colour-space conversion), one buffer.
        var info = new SKImageInfo(header.Width, header.Height, SKColorType.Rgba8888,
            codec.Info.AlphaType == SKAlphaType.Unpremul ? SKAlphaType.Premul : codec.Info.AlphaType);
        using var bitmap = new SKBitmap();
        if (!bitmap.TryAllocPixels(info)) return new ImageDecoding(ImageDecodeStatus.Unreadable, header, null);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput)) return new ImageDecoding(ImageDecodeStatus.Unreadable, header, null);

        var rgbaBytes = bitmap.GetPixelSpan();
        var pixels = new byte[header.Width * header.Height * 3];
        for (int i = 0, j = 0; j < pixels.Length; i += 4, j += 3)
        {
            pixels[j] = rgbaBytes[i];
            pixels[j + 1] = rgbaBytes[i + 1];
            pixels[j + 2] = rgbaBytes[i + 2];
        }
        return new ImageDecoding(ImageDecodeStatus.Decoded, header, new RgbImage(header.Width, header.Height, pixels));
    }

    /// <summary>Encodes RGB HWC pixels of <paramref name="width"/> × <paramref name="height"/> as PNG (how datasets store frames).</summary>
    public static byte[] EncodePng(byte[] rgb, int width, int height)
    {
        if (rgb.Length != width * height * 3) throw new ArgumentException("expected width × height × 3 bytes", nameof(rgb));
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var rgba = new byte[width * height * 4];
        for (int i = 0, j = 0; j < rgb.Length; i += 4, j += 3)
        {
            rgba[i] = rgb[j];
            rgba[i + 1] = rgb[j + 1];
            rgba[i + 2] = rgb[j + 2];
            rgba[i + 3] = 255;
        }
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    // Skia also reads GIF, WebP, BMP, ICO and more; only the two formats the API and LeRobot use are let through.
    private static ImageHeader? HeaderOf(SKCodec codec) => codec.EncodedFormat switch
    {
        SKEncodedImageFormat.Png => new ImageHeader("png", codec.Info.Width, codec.Info.Height),
        SKEncodedImageFormat.Jpeg => new ImageHeader("jpeg", codec.Info.Width, codec.Info.Height),
        _ => null,
    };
}

/// <summary>
/// Reads mp4 (AV1, H.264, …) videos through the ffmpeg command line. Every run has a time limit and is killed
/// (with its children) when it passes or when the caller cancels, so a hostile or huge file cannot hold a worker.
/// </summary>
public static class VideoReader
{
    /// <summary>How long one ffprobe or ffmpeg run may take unless the caller says otherwise.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(2);

    /// <summary>Width, height and frame count of the first video stream, or an error message.</summary>
    /// <exception cref="InvalidDataException">ffprobe failed or ran past <paramref name="timeout"/>.</exception>
    public static async Task<(int Width, int Height, int Frames, double Duration)> ProbeAsync(string path, CancellationToken cancellationToken, TimeSpan? timeout = null)
    {
        var start = Start("ffprobe", ["-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=width,height,nb_read_packets:format=duration", "-of", "default=noprint_wrappers=1", path]);
        var output = await RunAsync(start, timeout ?? DefaultTimeout, async (process, token) =>
        {
            var stdout = process.StandardOutput.ReadToEndAsync(token);
            var stderr = process.StandardError.ReadToEndAsync(token);
            await process.WaitForExitAsync(token);
            if (process.ExitCode != 0) throw new InvalidDataException((await stderr).Trim());
            return await stdout;
        }, cancellationToken);
        var values = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split('=', 2)).Where(p => p.Length == 2).GroupBy(p => p[0]).ToDictionary(g => g.Key, g => g.First()[1]);
        int Int(string key) => values.TryGetValue(key, out var v) && int.TryParse(v, CultureInfo.InvariantCulture, out var i) ? i : throw new InvalidDataException($"ffprobe did not report {key}.");
        var duration = values.TryGetValue("duration", out var d) && double.TryParse(d, CultureInfo.InvariantCulture, out var seconds) ? seconds : 0;
        return (Int("width"), Int("height"), Int("nb_read_packets"), duration);
    }

    /// <summary>Decodes frames in [<paramref name="from"/>, <paramref name="from"/> + count/fps) as RGB.</summary>
    /// <exception cref="InvalidDataException">The size is outside <see cref="ImageLimits"/>, or ffmpeg failed or ran past <paramref name="timeout"/>.</exception>
    public static async Task<RgbImage[]> ReadFramesAsync(string path, double from, int count, double fps, int width, int height, CancellationToken cancellationToken, TimeSpan? timeout = null)
    {
        // Frames are sized from the dataset's metadata, so its numbers are held to the image bounds before a buffer exists.
        if (width is < 1 or > ImageLimits.MaxSide || height is < 1 or > ImageLimits.MaxSide)
            throw new InvalidDataException($"Video frames of {width}×{height} are outside 1–{ImageLimits.MaxSide} pixels per side.");
        var start = Start("ffmpeg", ["-v", "error", "-ss", from.ToString("0.######", CultureInfo.InvariantCulture), "-i", path,
            "-frames:v", count.ToString(CultureInfo.InvariantCulture), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]);
        return await RunAsync(start, timeout ?? DefaultTimeout, async (process, token) =>
        {
            var frameBytes = width * height * 3;
            var frames = new List<RgbImage>(Math.Min(count, 1024));
            var stderr = process.StandardError.ReadToEndAsync(token);
            var stdout = process.StandardOutput.BaseStream;
            while (frames.Count < count)
            {
                var buffer = new byte[frameBytes];
                var read = await stdout.ReadAtLeastAsync(buffer, frameBytes, throwOnEndOfStream: false, token);
                if (read < frameBytes) break;
                frames.Add(new RgbImage(width, height, buffer));
            }
            await process.WaitForExitAsync(token);
            if (process.ExitCode != 0) throw new InvalidDataException($"ffmpeg could not decode {Path.GetFileName(path)}: {(await stderr).Trim()}");
            return frames.ToArray();
        }, cancellationToken);
    }

    private static ProcessStartInfo Start(string tool, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        return start;
    }

    /// <summary>Runs a tool under a time limit; whatever happens, the process is not left running.</summary>
    private static async Task<T> RunAsync<T>(ProcessStartInfo start, TimeSpan timeout, Func<Process, CancellationToken, Task<T>> io, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        using var process = StartOrExplain(start);
        try
        {
            return await io(process, limit.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new InvalidDataException($"{start.FileName} did not finish within {timeout.TotalSeconds:0.#} s.");
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None);
            }
        }
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
