[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("FineTune.Build.Tests")]
