import ExampleReward
import Foundation

// train-with-swift-reward CONFIG [KEY=VALUE ...]: GRPO from a vlmrl config with the Swift reward
// `valid_box` added to the config's reward functions.
let arguments = Array(CommandLine.arguments.dropFirst())
guard let config = arguments.first else {
  FileHandle.standardError.write(Data("usage: train-with-swift-reward CONFIG [training.key=value ...]\n".utf8))
  exit(2)
}
do {
  let rows = try await trainWithValidBox(configFile: URL(fileURLWithPath: config), overrides: Array(arguments.dropFirst()))
  if let last = rows.last {
    print("step \(last.step): valid_box \(last.values["rewards/valid_box/mean"].map { String($0) } ?? "n/a")")
  }
} catch {
  FileHandle.standardError.write(Data("error: \(error)\n".utf8))
  exit(1)
}
