import ArgumentParser
import PyramidLoader
import PyramidTrain

// Library enums as option values: parsed by their raw value, and listed in `--help`.

extension Conv2D.Algorithm: ExpressibleByArgument {}
extension OutputFormat: ExpressibleByArgument {}
