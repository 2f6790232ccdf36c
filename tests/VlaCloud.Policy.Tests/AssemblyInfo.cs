// libtorch already uses every core for one model; test classes running models side by side only compete.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
