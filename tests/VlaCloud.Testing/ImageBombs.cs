using System.Buffers.Binary;
using SkiaSharp;

namespace VlaCloud.Testing;

/// <summary>
/// Decompression bombs as the hardening issue reproduced them: a real, tiny PNG or JPEG whose header is patched to
/// declare a huge size. The bytes stay a few hundred; a decoder that trusts the header allocates (and fills) the
/// declared width × height × 4 bytes: 10 GB for the PNG, 1 GB for the JPEG.
/// </summary>
public static class ImageBombs
{
    /// <summary>A PNG of a few hundred bytes whose header declares <paramref name="width"/> × <paramref name="height"/> (50000² in the issue).</summary>
    public static byte[] Png(int width = 50_000, int height = 50_000)
    {
        var png = Encode(SKEncodedImageFormat.Png);
        // The signature (8 bytes), then the IHDR chunk: length (4), "IHDR" (4), width (4), height (4), … , CRC of type and data.
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(16), width);
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(20), height);
        var length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(8));
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(16 + length), Crc32(png.AsSpan(12, 4 + length)));
        return png;
    }

    /// <summary>A JPEG of a few hundred bytes whose frame header declares <paramref name="width"/> × <paramref name="height"/> (16384² in the issue).</summary>
    public static byte[] Jpeg(int width = 16_384, int height = 16_384)
    {
        var jpeg = Encode(SKEncodedImageFormat.Jpeg);
        // SOF0 (FF C0): length (2), precision (1), height (2), width (2).
        for (var i = 2; i + 9 < jpeg.Length; i++)
        {
            if (jpeg[i] != 0xFF || jpeg[i + 1] != 0xC0) continue;
            BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(i + 5), checked((ushort)height));
            BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(i + 7), checked((ushort)width));
            return jpeg;
        }
        throw new InvalidOperationException("The encoder wrote no baseline frame header.");
    }

    private static byte[] Encode(SKEncodedImageFormat format)
    {
        using var bitmap = new SKBitmap(8, 8, SKColorType.Rgba8888, SKAlphaType.Premul);
        bitmap.Erase(new SKColor(200, 30, 30));
        using var data = bitmap.Encode(format, 90);
        return data.ToArray();
    }

    private static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in bytes)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }
}
