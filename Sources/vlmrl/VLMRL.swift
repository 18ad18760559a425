import ArgumentParser
import Foundation
import Training

/// The vlmrl command line: train, sft, eval, generate, data, rewards, tokenizer and machine checks.
@main
struct VLMRL: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vlmrl",
    abstract: "Fine-tune Qwen2-VL / Qwen2.5-VL with GRPO, SFT and evaluation, on libtorch.",
    subcommands: [Doctor.self, Train.self, SFT.self, Eval.self, ModelCommand.self, Generate.self, Merge.self, Serve.self, Preprocess.self, Forward.self, Tokenize.self, RewardCommandCLI.self, DataCommand.self, Bench.self, Demo.self, ReportCommand.self])

  /// ArgumentParser's entry point, with stdout line-buffered first (a log file or pipe keeps every
  /// line of a killed run) and the progress bar's line ended before an error is printed.
  /// Exit status: 0 success, 1 an error, 64 a usage error (README, "Exit codes").
  static func main() async {
    Console.lineBufferStandardOutput()
    do {
      var command = try parseAsRoot()
      if var asyncCommand = command as? AsyncParsableCommand {
        try await asyncCommand.run()
      } else {
        try command.run()
      }
    } catch {
      ConsoleLine.standardOutput.endBar()
      exit(withError: error)
    }
  }
}
