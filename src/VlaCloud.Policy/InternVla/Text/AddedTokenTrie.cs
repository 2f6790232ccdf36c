namespace VlaCloud.Policy.InternVla.Text;

/// <summary>
/// Finds added tokens in a text the way transformers' <c>Trie.split</c> does: scanning left to right, the match that
/// starts first wins, and of those starting there the longest. Cost: the text's length times the longest token's.
/// </summary>
internal sealed class AddedTokenTrie
{
    private sealed class Node
    {
        public Dictionary<char, Node> Next { get; } = [];
        public bool Terminal { get; set; }
    }

    private readonly Node root = new();

    /// <summary>A trie of the given token texts (empty texts are ignored).</summary>
    public AddedTokenTrie(IEnumerable<string> tokens)
    {
        foreach (var token in tokens)
        {
            if (token.Length == 0) continue;
            var node = root;
            foreach (var c in token)
            {
                if (!node.Next.TryGetValue(c, out var child)) node.Next[c] = child = new Node();
                node = child;
            }
            node.Terminal = true;
        }
    }

    /// <summary>The non-overlapping matches in <paramref name="text"/>, left to right, as (start, length).</summary>
    public IEnumerable<(int Start, int Length)> Matches(string text)
    {
        var i = 0;
        while (i < text.Length)
        {
            var longest = 0;
            var node = root;
            for (var j = i; j < text.Length && node.Next.TryGetValue(text[j], out node); j++)
                if (node.Terminal) longest = j - i + 1;
            if (longest > 0)
            {
                yield return (i, longest);
                i += longest;
            }
            else i++;
        }
    }
}
