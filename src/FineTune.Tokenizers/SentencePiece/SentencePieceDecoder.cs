using System.Text;

namespace FineTune.Tokenizers.SentencePiece;

/// <summary>
/// Ids back to text as llama.cpp does for a SentencePiece GGUF (<c>llama_detokenize</c>, built on
/// <c>llama_token_to_piece</c>): normal pieces with <c>▁</c> as a space, byte tokens as their byte,
/// user-defined tokens as written, control and unknown tokens as written or (skipping special
/// tokens) not at all, unused ones not at all; with a space prefix the first piece loses one leading
/// space, and skipping special tokens drops a leading BOS / trailing EOS the vocabulary adds.
/// </summary>
internal sealed class SentencePieceDecoder(SentencePieceVocabulary vocabulary, SentencePieceTokenType[] types)
{
    private static readonly UTF8Encoding Lossy = new(false, false);

    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens)
    {
        int start = 0, count = ids.Count;
        var removeSpace = vocabulary.AddSpacePrefix;
        if (skipSpecialTokens && vocabulary.AddBosToken && count > 0 && ids[0] == vocabulary.BosTokenId)
        {
            // llama.cpp keeps the first piece's space when it removed a BOS before it.
            removeSpace = false;
            start++;
            count--;
        }
        if (skipSpecialTokens && vocabulary.AddEosToken && count > 0 && ids[start + count - 1] == vocabulary.EosTokenId) count--;

        var bytes = new List<byte>(count * 4);
        for (var i = start; i < start + count; i++)
        {
            AppendPiece(ids[i], !skipSpecialTokens, removeSpace, bytes);
            removeSpace = false;
        }
        return Lossy.GetString([.. bytes]);
    }

    private void AppendPiece(int id, bool special, bool lstrip, List<byte> output)
    {
        if ((uint)id >= (uint)types.Length)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id {id} is not in the vocabulary (size {types.Length}).");
        var text = vocabulary.Tokens[id];
        byte[] piece;
        switch (types[id])
        {
            case SentencePieceTokenType.Control or SentencePieceTokenType.Unknown:
                if (!special) return;
                piece = Encoding.UTF8.GetBytes(text);
                break;
            case SentencePieceTokenType.UserDefined:
                piece = Encoding.UTF8.GetBytes(text);
                break;
            case SentencePieceTokenType.Normal:
                piece = Encoding.UTF8.GetBytes(text.Replace('\u2581', ' '));
                break;
            case SentencePieceTokenType.Byte:
                piece = [Convert.ToByte(text.Substring(3, 2), 16)];
                break;
            default:
                return;
        }
        var from = lstrip && piece.Length > 0 && piece[0] == (byte)' ' ? 1 : 0;
        for (var k = from; k < piece.Length; k++) output.Add(piece[k]);
    }
}
