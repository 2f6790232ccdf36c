using System.Globalization;
using System.Text;

namespace VlaCloud.Policy.InternVla.Text;

/// <summary>
/// Splits text into the pieces Qwen2's pre-tokenisation regex finds (transformers' <c>PRETOKENIZE_REGEX</c> in
/// <c>tokenization_qwen2.py</c>, run with the <c>regex</c> module's <c>findall</c>):
/// <code>(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</code>
/// One left-to-right scan decides each alternative in the regex's order, so the cost is linear in the text whatever
/// it holds: a backtracking engine on that pattern has no proven bound, and .NET's non-backtracking one lacks the
/// lookahead. Digits come out one per piece. <c>\s</c> is Unicode White_Space (what the <c>regex</c> module means by
/// it, and <see cref="Rune.IsWhiteSpace"/>); letters and numbers are the <c>L*</c> and <c>N*</c> categories.
/// </summary>
internal static class QwenPreTokenizer
{
    /// <summary>The upstream pattern this scanner implements (for documentation and error messages).</summary>
    public const string Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private enum CharClass { Letter, Number, Space, Other }

    /// <summary>Appends the pieces of <paramref name="text"/> as (start, length) in UTF-16 units.</summary>
    public static void Split(ReadOnlySpan<char> text, List<(int Start, int Length)> pieces)
    {
        var i = 0;
        while (i < text.Length)
        {
            var end = MatchAt(text, i);
            pieces.Add((i, end - i));
            i = end;
        }
    }

    /// <summary>The end of the match that starts at <paramref name="i"/>: every character starts one.</summary>
    private static int MatchAt(ReadOnlySpan<char> text, int i)
    {
        var first = Classify(text, i, out var width);
        var c = text[i];

        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if (c == '\'' && ContractionLength(text, i + 1) is > 0 and var suffix) return i + 1 + suffix;

        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (first == CharClass.Letter) return SkipLetters(text, i);
        if (first != CharClass.Number && c != '\r' && c != '\n' && i + width < text.Length && Classify(text, i + width, out _) == CharClass.Letter)
            return SkipLetters(text, i + width);

        // \p{N}
        if (first == CharClass.Number) return i + width;

        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        if (c == ' ' && i + 1 < text.Length && Classify(text, i + 1, out _) == CharClass.Other) return SkipOthers(text, i + 1);
        if (first == CharClass.Other) return SkipOthers(text, i);

        // Only whitespace is left. \s*[\r\n]+ ends after the run's last line break (the greedy \s* gives back just
        // enough for [\r\n]+); \s+(?!\S) stops one short of the run's end unless the text ends there; \s+ takes the run.
        var end = i;
        var afterLastBreak = -1;
        while (end < text.Length && Classify(text, end, out var w) == CharClass.Space)
        {
            if (text[end] is '\r' or '\n') afterLastBreak = end + 1;
            end += w;
        }
        if (afterLastBreak > 0) return afterLastBreak;
        if (end == text.Length) return end;
        // Every White_Space character is in the BMP, so one step back is one UTF-16 unit.
        return end - i >= 2 ? end - 1 : end;
    }

    /// <summary>Length after the apostrophe of <c>'s 't 're 've 'm 'll 'd</c> (any case), or 0.</summary>
    private static int ContractionLength(ReadOnlySpan<char> text, int p)
    {
        if (p >= text.Length) return 0;
        static bool Is(char c, char lower) => c == lower || c == char.ToUpperInvariant(lower);
        var c = text[p];
        // The regex module folds case simply: long s (U+017F) folds to 's'.
        if (Is(c, 's') || c == '\u017F' || Is(c, 't') || Is(c, 'm') || Is(c, 'd')) return 1;
        if (p + 1 >= text.Length) return 0;
        var next = text[p + 1];
        return (Is(c, 'r') && Is(next, 'e')) || (Is(c, 'v') && Is(next, 'e')) || (Is(c, 'l') && Is(next, 'l')) ? 2 : 0;
    }

    private static int SkipLetters(ReadOnlySpan<char> text, int p)
    {
        while (p < text.Length && Classify(text, p, out var w) == CharClass.Letter) p += w;
        return p;
    }

    private static int SkipOthers(ReadOnlySpan<char> text, int p)
    {
        while (p < text.Length && Classify(text, p, out var w) == CharClass.Other) p += w;
        while (p < text.Length && text[p] is '\r' or '\n') p++;
        return p;
    }

    /// <summary>
    /// The class of the code point at <paramref name="i"/>. A lone surrogate counts as U+FFFD (Other), which is what
    /// the tokenizer encodes it as.
    /// </summary>
    private static CharClass Classify(ReadOnlySpan<char> text, int i, out int width)
    {
        var c = text[i];
        if (c < 0x80)
        {
            // ASCII fast path; the same answers as the general one below.
            width = 1;
            if (char.IsAsciiLetter(c)) return CharClass.Letter;
            if (char.IsAsciiDigit(c)) return CharClass.Number;
            return c is ' ' or (>= '\t' and <= '\r') ? CharClass.Space : CharClass.Other;
        }
        Rune.DecodeFromUtf16(text[i..], out var rune, out width);
        if (Rune.IsWhiteSpace(rune)) return CharClass.Space;
        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CharClass.Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CharClass.Number,
            _ => CharClass.Other,
        };
    }
}
