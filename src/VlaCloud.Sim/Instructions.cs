namespace VlaCloud.Sim;

/// <summary>
/// Instruction templates per task: <see cref="Seen"/> wordings appear in training data, <see cref="Paraphrases"/>
/// are held out for the unseen-instruction splits. <c>{object}</c> and <c>{destination}</c> are replaced by
/// phrases such as "red cube" and "black bowl".
/// </summary>
public static class Instructions
{
    /// <summary>Wordings used in training and in the seen splits.</summary>
    public static IReadOnlyDictionary<TaskKind, IReadOnlyList<string>> Seen { get; } = new Dictionary<TaskKind, IReadOnlyList<string>>
    {
        [TaskKind.PickPlace] =
        [
            "pick up the {object} and place it in the {destination}",
            "put the {object} in the {destination}",
            "place the {object} into the {destination}",
        ],
        [TaskKind.Push] =
        [
            "push the {object} to the {destination}",
            "push the {object} into the {destination}",
            "slide the {object} to the {destination}",
        ],
    };

    /// <summary>Held-out wordings, used only by the unseen-instruction splits.</summary>
    public static IReadOnlyDictionary<TaskKind, IReadOnlyList<string>> Paraphrases { get; } = new Dictionary<TaskKind, IReadOnlyList<string>>
    {
        [TaskKind.PickPlace] =
        [
            "grab the {object} and drop it into the {destination}",
            "lift the {object} and set it down inside the {destination}",
            "move the {object} over to the {destination} by picking it up",
        ],
        [TaskKind.Push] =
        [
            "nudge the {object} until it reaches the {destination}",
            "shove the {object} over to the {destination} without lifting it",
            "without picking it up, get the {object} onto the {destination}",
        ],
    };

    /// <summary>Fills a template.</summary>
    public static string Render(string template, ObjectKind target, Destination destination) =>
        template.Replace("{object}", target.Phrase, StringComparison.Ordinal)
                .Replace("{destination}", destination.Phrase, StringComparison.Ordinal);
}
