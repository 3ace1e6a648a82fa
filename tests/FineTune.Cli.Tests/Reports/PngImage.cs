using System.Buffers.Binary;
using System.IO.Compression;

namespace FineTune.Cli.Tests.Reports;

/// <summary>
/// Minimal PNG decoder for screenshots: 8-bit RGB or RGBA, non-interlaced (what Chromium writes).
/// Concatenates the IDAT chunks, inflates them with zlib and undoes the per-row filters.
/// </summary>
internal sealed class PngImage
{
    public int Width { get; }
    public int Height { get; }
    private readonly byte[] _rgba;

    private PngImage(int width, int height, byte[] rgba) => (Width, Height, _rgba) = (width, height, rgba);

    public (byte R, byte G, byte B) this[int x, int y]
    {
        get { var i = (y * Width + x) * 4; return (_rgba[i], _rgba[i + 1], _rgba[i + 2]); }
    }

    public static PngImage Load(string path)
    {
        var data = File.ReadAllBytes(path);
        ReadOnlySpan<byte> signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
        if (!data.AsSpan(0, 8).SequenceEqual(signature)) throw new InvalidDataException("not a PNG file");
        int width = 0, height = 0, colorType = -1;
        var idat = new MemoryStream();
        for (var pos = 8; pos < data.Length;)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(pos));
            var type = System.Text.Encoding.ASCII.GetString(data, pos + 4, 4);
            var body = data.AsSpan(pos + 8, length);
            switch (type)
            {
                case "IHDR":
                    width = BinaryPrimitives.ReadInt32BigEndian(body);
                    height = BinaryPrimitives.ReadInt32BigEndian(body[4..]);
                    if (body[8] != 8 || body[12] != 0) throw new InvalidDataException($"unsupported bit depth {body[8]} or interlace {body[12]}");
                    colorType = body[9];
                    if (colorType is not (2 or 6)) throw new InvalidDataException($"unsupported colour type {colorType}");
                    break;
                case "IDAT": idat.Write(body); break;
                case "IEND": pos = data.Length; continue;
            }
            pos += 12 + length;
        }
        var channels = colorType == 6 ? 4 : 3;
        var stride = width * channels;
        idat.Position = 0;
        var raw = new MemoryStream();
        using (var z = new ZLibStream(idat, CompressionMode.Decompress)) z.CopyTo(raw);
        var bytes = raw.ToArray();
        var pixels = new byte[height * stride];
        for (var y = 0; y < height; y++)
        {
            var filter = bytes[y * (stride + 1)];
            var src = bytes.AsSpan(y * (stride + 1) + 1, stride);
            var row = pixels.AsSpan(y * stride, stride);
            var up = y > 0 ? pixels.AsSpan((y - 1) * stride, stride) : new byte[stride];
            for (var i = 0; i < stride; i++)
            {
                int a = i >= channels ? row[i - channels] : 0, b = up[i], c = i >= channels ? up[i - channels] : 0;
                row[i] = (byte)(src[i] + filter switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) / 2,
                    4 => Paeth(a, b, c),
                    _ => throw new InvalidDataException($"bad filter {filter}"),
                });
            }
        }
        var rgba = new byte[width * height * 4];
        for (var p = 0; p < width * height; p++)
        {
            rgba[p * 4] = pixels[p * channels];
            rgba[p * 4 + 1] = pixels[p * channels + 1];
            rgba[p * 4 + 2] = pixels[p * channels + 2];
            rgba[p * 4 + 3] = channels == 4 ? pixels[p * channels + 3] : (byte)255;
        }
        return new PngImage(width, height, rgba);
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
