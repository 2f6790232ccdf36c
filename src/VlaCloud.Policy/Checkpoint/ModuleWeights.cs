using static TorchSharp.torch;

namespace VlaCloud.Policy.Checkpoint;

/// <summary>Copies the tensors of a safetensors file (upstream names) into a module's parameters.</summary>
public static class ModuleWeights
{
    /// <summary>
    /// Loads every parameter of <paramref name="module"/> from the tensor named <paramref name="prefix"/> + its name,
    /// converted to the parameter's dtype. Throws <see cref="CheckpointException"/> naming a missing tensor, a shape that
    /// differs, or (with <paramref name="strict"/>) a tensor under the prefix that the module has no parameter for.
    /// </summary>
    public static void Load(nn.Module module, SafetensorsFile file, string prefix = "", bool strict = true)
    {
        var source = Path.GetFileName(file.Path);
        var parameters = module.named_parameters().ToList();
        foreach (var (name, parameter) in parameters)
        {
            var key = prefix + name;
            if (!file.Contains(key)) throw new CheckpointException($"{source} has no tensor '{key}'");
            if (!file.Shape(key).SequenceEqual(parameter.shape))
                throw new CheckpointException($"{source}: '{key}' has shape [{string.Join(", ", file.Shape(key))}], the module needs [{string.Join(", ", parameter.shape)}]");
            using var stored = file.Read(key);
            using var _ = no_grad();
            parameter.copy_(stored);
        }
        if (!strict) return;
        var known = parameters.Select(p => prefix + p.name).ToHashSet();
        var extra = file.Names.FirstOrDefault(n => n.StartsWith(prefix, StringComparison.Ordinal) && !known.Contains(n));
        if (extra is not null) throw new CheckpointException($"{source}: tensor '{extra}' is not a parameter of the module");
    }
}
