import ArgumentParser
import Foundation
#if canImport(Glibc)
@preconcurrency import Glibc  // `stdout` is a C global
#endif

/// The vlmrl command line: train, sft, eval, generate, data, rewards, tokenizer and machine checks.
@main
struct VLMRL: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vlmrl",
    abstract: "Fine-tune Qwen2-VL / Qwen2.5-VL with GRPO, SFT and evaluation, on libtorch.",
    subcommands: [Doctor.self, Train.self, SFT.self, Eval.self, ModelCommand.self, Generate.self, Preprocess.self, Forward.self, Tokenize.self, RewardCommandCLI.self, DataCommand.self, Bench.self])

  /// Line-buffered standard output, so a log piped to a file or `tee` keeps every finished line even
  /// when the process dies (the C default for a pipe is block buffering).
  static func main() async {
    setvbuf(stdout, nil, _IOLBF, 0)
    do {
      var command = try parseAsRoot()
      if var asyncCommand = command as? AsyncParsableCommand {
        try await asyncCommand.run()
      } else {
        try command.run()
      }
    } catch {
      exit(withError: error)
    }
  }
}
