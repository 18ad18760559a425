import ArgumentParser
import Foundation

/// The vlmrl command line: train, sft, eval, generate, data, rewards, tokenizer and machine checks.
@main
struct VLMRL: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vlmrl",
    abstract: "Fine-tune Qwen2-VL / Qwen2.5-VL with GRPO, SFT and evaluation, on libtorch.",
    subcommands: [Doctor.self, Train.self, SFT.self, Eval.self, ModelCommand.self, Generate.self, Serve.self, Preprocess.self, Forward.self, Tokenize.self, RewardCommandCLI.self, DataCommand.self, Bench.self])
}
