using System.Text.Json.Serialization;

namespace VlaCloud.Contracts;

/// <summary>One page of a list, OpenAI style: pass <c>last_id</c> as <c>after</c> for the next page.</summary>
/// <typeparam name="T">Item type.</typeparam>
/// <param name="Data">The items, newest first.</param>
/// <param name="FirstId">Id of the first item.</param>
/// <param name="LastId">Id of the last item.</param>
/// <param name="HasMore">Whether a next page exists.</param>
public sealed record ListPage<T>(
    [property: JsonPropertyName("data")] IReadOnlyList<T> Data,
    [property: JsonPropertyName("first_id")] string? FirstId,
    [property: JsonPropertyName("last_id")] string? LastId,
    [property: JsonPropertyName("has_more")] bool HasMore)
{
    /// <summary>Always <c>list</c>.</summary>
    [JsonPropertyName("object")]
    public string Object => "list";
}
