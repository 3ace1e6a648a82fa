// Each test runs several real `dotnet build`s; running them side by side on a 2-core CI machine
// only makes every one of them slower.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
