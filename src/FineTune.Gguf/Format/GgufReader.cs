using System.Buffers.Binary;
using System.Text;
using FineTune.Core.Diagnostics;

namespace FineTune.Gguf.Format;

/// <summary>
/// Reads the header of a GGUF file (v2 or v3) without trusting any length in it: every count,
/// string length, dimension and offset is checked against the bytes actually present, so a
/// truncated or corrupt file ends in a <see cref="FineTuneException"/> (FT4001-FT4006), never in
/// an out-of-memory, an overflow or an index error.
/// </summary>
public static class GgufReader
{
    private const uint Magic = 0x46554747; // "GGUF" little-endian
    private const int MaxDims = 4;         // GGML_MAX_DIMS

    /// <summary>Reads the header of <paramref name="path"/>.</summary>
    public static GgufFile Read(string path)
    {
        FileStream fs;
        try
        {
            fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FineTuneException(GgufErrors.FileUnreadable, $"cannot open GGUF file: {e.Message}", path, inner: e);
        }
        using (fs)
        {
            return new Parser(fs, path).Parse();
        }
    }

    private sealed class Parser(FileStream stream, string path)
    {
        private readonly long _length = stream.Length;
        private readonly byte[] _scratch = new byte[8];

        private long Remaining => _length - stream.Position;

        public GgufFile Parse()
        {
            if (_length < 4 || ReadU32("magic") != Magic)
                throw Error(GgufErrors.NotGguf, "not a GGUF file (the magic bytes 'GGUF' are missing)");
            var version = ReadU32("version");
            if (version is not (2 or 3))
                throw Error(GgufErrors.UnsupportedVersion, $"GGUF version {version} is not supported (expected 2 or 3)");
            var tensorCount = ReadU64("tensor count");
            var kvCount = ReadU64("metadata count");
            // Each entry needs at least a length-prefixed key plus a type tag, so a count larger than
            // the bytes left is corrupt; checking before allocating keeps a bad count from exhausting memory.
            if (kvCount > (ulong)Remaining / 12) throw Error(GgufErrors.Truncated, $"metadata count {kvCount} exceeds what the file can hold");
            if (tensorCount > (ulong)Remaining / 24) throw Error(GgufErrors.Truncated, $"tensor count {tensorCount} exceeds what the file can hold");

            var metadata = new List<KeyValuePair<string, GgufValue>>((int)kvCount);
            var keys = new HashSet<string>(StringComparer.Ordinal);
            for (ulong i = 0; i < kvCount; i++)
            {
                var key = ReadString("metadata key");
                if (!keys.Add(key)) throw Error(GgufErrors.BadMetadata, $"duplicate metadata key '{key}'");
                var type = ReadValueType(key);
                metadata.Add(new(key, ReadValue(type, key, depth: 0)));
            }

            var alignment = GgufFile.DefaultAlignment;
            var alignValue = metadata.FirstOrDefault(kv => kv.Key == "general.alignment").Value;
            if (alignValue is not null)
            {
                if (alignValue.Type != GgufValueType.UInt32 || (uint)alignValue.Value is var a && (a == 0 || (a & (a - 1)) != 0))
                    throw Error(GgufErrors.BadMetadata, $"general.alignment must be a UInt32 power of two, got {alignValue.Type} {alignValue}");
                alignment = (uint)alignValue.Value;
            }

            var tensors = new List<GgufTensorInfo>((int)tensorCount);
            var names = new HashSet<string>(StringComparer.Ordinal);
            for (ulong i = 0; i < tensorCount; i++)
            {
                var name = ReadString("tensor name");
                if (!names.Add(name)) throw Error(GgufErrors.BadTensorInfo, $"duplicate tensor name '{name}'");
                var nDims = ReadU32($"dimension count of '{name}'");
                if (nDims is 0 or > MaxDims) throw Error(GgufErrors.BadTensorInfo, $"tensor '{name}' has {nDims} dimensions (1 to {MaxDims} allowed)");
                var shape = new long[nDims];
                long elements = 1;
                for (var d = 0; d < nDims; d++)
                {
                    var dim = ReadU64($"dimension {d} of '{name}'");
                    if (dim == 0 || dim > long.MaxValue / 2) throw Error(GgufErrors.BadTensorInfo, $"tensor '{name}' has invalid dimension {d} = {dim}");
                    shape[d] = (long)dim;
                    try { elements = checked(elements * shape[d]); }
                    catch (OverflowException) { throw Error(GgufErrors.BadTensorInfo, $"tensor '{name}' has more elements than a file can hold"); }
                }
                var typeCode = ReadU32($"type of '{name}'");
                var type = (GgmlType)typeCode;
                if (GgmlTypeInfo.Layout(type) is not { } layout)
                    throw Error(GgufErrors.BadTensorInfo, $"tensor '{name}' has unknown ggml type {typeCode}");
                if (shape[0] % layout.BlockSize != 0)
                    throw Error(GgufErrors.BadTensorInfo, $"tensor '{name}' row length {shape[0]} is not a multiple of the {type} block size {layout.BlockSize}");
                var offset = ReadU64($"data offset of '{name}'");
                if (offset % alignment != 0) throw Error(GgufErrors.BadTensorInfo, $"tensor '{name}' data offset {offset} is not aligned to {alignment}");
                tensors.Add(new GgufTensorInfo(name, shape, type, offset));
            }

            var dataOffset = AlignUp(stream.Position, alignment);
            foreach (var t in tensors)
            {
                long size;
                try { size = checked(t.ElementCount / t.Shape[0] * (t.Shape[0] / GgmlTypeInfo.Layout(t.Type)!.Value.BlockSize) * GgmlTypeInfo.Layout(t.Type)!.Value.TypeSize); }
                catch (OverflowException) { throw Error(GgufErrors.BadTensorInfo, $"tensor '{t.Name}' is larger than a file can hold"); }
                if (t.Offset > (ulong)long.MaxValue || dataOffset + (long)t.Offset > _length - size)
                    throw Error(GgufErrors.Truncated, $"tensor '{t.Name}' data ({size} bytes at offset {t.Offset}) lies beyond the end of the file ({_length} bytes): the file is truncated");
            }
            if (tensors.Count > 0 && dataOffset > _length) throw Error(GgufErrors.Truncated, "the file ends before its tensor data");
            return new GgufFile(path, version, metadata, tensors, alignment, dataOffset, _length);
        }

        private GgufValueType ReadValueType(string key)
        {
            var code = ReadU32($"value type of '{key}'");
            if (code > (uint)GgufValueType.Float64) throw Error(GgufErrors.BadMetadata, $"metadata '{key}' has unknown value type {code}");
            return (GgufValueType)code;
        }

        private GgufValue ReadValue(GgufValueType type, string key, int depth)
        {
            if (type != GgufValueType.Array) return GgufValue.Scalar(type, ReadScalar(type, key));
            if (depth > 8) throw Error(GgufErrors.BadMetadata, $"metadata '{key}' nests arrays too deeply");
            var elementType = ReadValueType(key);
            var count = ReadU64($"array length of '{key}'");
            var minSize = elementType switch
            {
                GgufValueType.String => 8UL,
                GgufValueType.Array => 12UL,
                _ => (ulong)ScalarSize(elementType),
            };
            if (count > (ulong)Remaining / minSize)
                throw Error(GgufErrors.Truncated, $"metadata '{key}' declares {count} elements but the file ends first");
            var n = (int)count;
            if (elementType == GgufValueType.Array)
            {
                var nested = new GgufValue[n];
                for (var i = 0; i < n; i++) nested[i] = ReadValue(GgufValueType.Array, key, depth + 1);
                return GgufValue.Array(elementType, nested);
            }
            var array = System.Array.CreateInstance(GgufValue.ClrType(elementType), n);
            if (elementType is GgufValueType.String or GgufValueType.Bool)
            {
                for (var i = 0; i < n; i++) array.SetValue(ReadScalar(elementType, key), i);
            }
            else
            {
                // Fixed-size elements: one bulk read, then a little-endian view (x86/ARM hosts are little-endian).
                var bytes = new byte[n * ScalarSize(elementType)];
                stream.ReadExactly(bytes);
                Buffer.BlockCopy(bytes, 0, array, 0, bytes.Length);
            }
            return GgufValue.Array(elementType, array);
        }

        private object ReadScalar(GgufValueType type, string key)
        {
            switch (type)
            {
                case GgufValueType.String: return ReadString($"value of '{key}'");
                case GgufValueType.Bool:
                    var b = Read(1, key)[0];
                    if (b > 1) throw Error(GgufErrors.BadMetadata, $"metadata '{key}' has bool value {b} (must be 0 or 1)");
                    return b == 1;
            }
            var s = Read(ScalarSize(type), key);
            // Each arm is boxed on its own: a switch expression would promote all of them to double.
            return type switch
            {
                GgufValueType.UInt8 => (object)s[0],
                GgufValueType.Int8 => (object)(sbyte)s[0],
                GgufValueType.UInt16 => (object)BinaryPrimitives.ReadUInt16LittleEndian(s),
                GgufValueType.Int16 => (object)BinaryPrimitives.ReadInt16LittleEndian(s),
                GgufValueType.UInt32 => (object)BinaryPrimitives.ReadUInt32LittleEndian(s),
                GgufValueType.Int32 => (object)BinaryPrimitives.ReadInt32LittleEndian(s),
                GgufValueType.Float32 => (object)BinaryPrimitives.ReadSingleLittleEndian(s),
                GgufValueType.UInt64 => (object)BinaryPrimitives.ReadUInt64LittleEndian(s),
                GgufValueType.Int64 => (object)BinaryPrimitives.ReadInt64LittleEndian(s),
                GgufValueType.Float64 => (object)BinaryPrimitives.ReadDoubleLittleEndian(s),
                _ => throw Error(GgufErrors.BadMetadata, $"metadata '{key}' has unknown value type {type}"),
            };
        }

        private static int ScalarSize(GgufValueType type) => type switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            _ => 8,
        };

        private string ReadString(string what)
        {
            var len = ReadU64($"length of {what}");
            if (len > (ulong)Remaining) throw Error(GgufErrors.Truncated, $"{what} is {len} bytes long but only {Remaining} bytes remain");
            if (len > int.MaxValue) throw Error(GgufErrors.BadMetadata, $"{what} is too long ({len} bytes)");
            var bytes = new byte[(int)len];
            stream.ReadExactly(bytes);
            try
            {
                return Strict.GetString(bytes);
            }
            catch (DecoderFallbackException)
            {
                throw Error(GgufErrors.BadMetadata, $"{what} is not valid UTF-8");
            }
        }

        private uint ReadU32(string what) => BinaryPrimitives.ReadUInt32LittleEndian(Read(4, what));
        private ulong ReadU64(string what) => BinaryPrimitives.ReadUInt64LittleEndian(Read(8, what));

        private ReadOnlySpan<byte> Read(int n, string what)
        {
            if (Remaining < n) throw Error(GgufErrors.Truncated, $"the file ends while reading {what} at byte {stream.Position}: it is truncated");
            var span = _scratch.AsSpan(0, n);
            stream.ReadExactly(span);
            return span;
        }

        private FineTuneException Error(string code, string message) => new(code, message, path);
    }

    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    internal static long AlignUp(long value, long alignment) => (value + alignment - 1) / alignment * alignment;
}
