import ArgumentParser

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Pyramid against limits measured in the same run.",
        subcommands: [BenchBuildCommand.self, BenchLoadCommand.self, BenchTrainCommand.self, BenchConvCommand.self, BenchMPICommand.self])
}
