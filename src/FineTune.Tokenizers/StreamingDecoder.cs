namespace FineTune.Tokenizers;

/// <summary>
/// Decodes ids one at a time and returns only text that is complete: when a character's UTF-8
/// bytes are spread over several tokens, nothing is emitted until the last of them arrives. The
/// text emitted over a whole stream equals <see cref="Tokenizer.Decode"/> of all its ids.
/// </summary>
/// <remarks>
/// Follows Hugging Face's <c>DecodeStream</c>: the previous tokens are decoded again as context so
/// decoders that depend on position (e.g. SentencePiece's leading-space strip) stay correct.
/// </remarks>
public sealed class StreamingDecoder
{
    private readonly Tokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly List<int> _ids = new();
    private string _prefix = "";
    private int _prefixIndex;

    internal StreamingDecoder(Tokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>Adds one id; returns the newly completed text, or an empty string when none is complete yet.</summary>
    public string Add(int id)
    {
        if (_prefix.Length == 0 && _ids.Count > 0)
        {
            var prefix = _tokenizer.Decode(_ids, _skipSpecialTokens);
            if (!prefix.EndsWith('\uFFFD'))
            {
                _prefix = prefix;
                _prefixIndex = _ids.Count;
            }
        }
        _ids.Add(id);
        var text = _tokenizer.Decode(_ids, _skipSpecialTokens);
        if (text.Length <= _prefix.Length || text.EndsWith('\uFFFD')) return "";
        if (!text.StartsWith(_prefix, StringComparison.Ordinal))
        {
            // The context re-decoded differently (cannot happen with the decoders supported); restart from here.
            _ids.RemoveRange(0, _ids.Count - 1);
            _prefix = "";
            _prefixIndex = 0;
            return text;
        }
        var newText = text[_prefix.Length..];
        var keep = _ids.Count - _prefixIndex;
        _ids.RemoveRange(0, _prefixIndex);
        _prefix = _tokenizer.Decode(_ids, _skipSpecialTokens);
        _prefixIndex = keep;
        return newText;
    }
}
