[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("FineTune.Cli.Tests")]
