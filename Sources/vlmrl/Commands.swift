import ArgumentParser
import Common
import Datasets
import Foundation
import Hub
import Rewards
import Tokenizers
import Torch

/// `vlmrl tokenize`: encode text to ids, or decode ids, with a model folder's tokenizer.
struct Tokenize: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Encode text to token ids (or decode ids with --decode).")
  @Option(help: "Folder with tokenizer.json (a model folder).") var tokenizer: String
  @Flag(help: "Decode: the input is a list of ids (\"1, 2, 3\" or \"[1,2,3]\").") var decode = false
  @Argument(help: "Text to encode, or ids to decode.") var input: String

  func run() throws {
    print(try TokenizeCommand.run(tokenizerDirectory: URL(fileURLWithPath: tokenizer), input: input, decode: decode))
  }
}

/// `vlmrl reward`: score records that carry a `completion` with the configured rewards.
struct RewardCommandCLI: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "reward", abstract: "Score completions in a JSON-lines file with reward functions (debug a reward setup).")
  @Option(help: "Comma-separated reward names (registry names or aliases).") var funcs: String
  @Option(help: "JSON-lines file; each record has `completion` plus the record's fields.") var data: String
  @Option(help: "Comma-separated weights, one per function (default 1 each).") var weights: String?
  @Option(help: "Reward parameters as a JSON object, e.g. '{\"box_frame\": \"original\"}'.") var params: String?
  @Flag(help: "Print JSON lines.") var json = false

  func run() async throws {
    let names = funcs.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    let weightValues = try weights.map { text in
      try text.split(separator: ",").map { item -> Double in
        guard let value = Double(item.trimmingCharacters(in: .whitespaces)) else {
          throw ValidationError("--weights: '\(item)' is not a number")
        }
        return value
      }
    }
    var parameters: [String: JSONValue] = [:]
    if let params {
      guard let object = try JSONValue.parse(params).objectValue else { throw ValidationError("--params must be a JSON object") }
      parameters = object
    }
    let lines = try await RewardCommand.run(funcs: names, weights: weightValues, parameters: parameters,
                                            dataFile: URL(fileURLWithPath: data), json: json)
    lines.forEach { print($0) }
  }
}

/// `vlmrl data`: inspect, convert and prepare datasets.
struct DataCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "data", abstract: "Inspect, convert and prepare datasets.",
    subcommands: [Inspect.self, Convert.self, PrepareAOKVQA.self, Synth.self])

  struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Kinds, counts, fields, sample prompts and bad records of a dataset.")
    @Argument(help: "A data file, folder, glob, dataset YAML, or hub dataset (hub:org/name[:split]).") var path: String
    @Option(help: "How many rendered prompts to show.") var prompts = 3
    func run() async throws {
      guard prompts >= 0 else { throw CLIError("--prompts \(prompts) is negative") }
      try DataTools.inspect(path: try await HubDatasets.localPath(path), prompts: prompts).forEach { print($0) }
    }
  }

  struct Convert: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Convert a dataset to JSON lines, extracting embedded images.")
    @Argument(help: "Input data path, or hub dataset (hub:org/name[:split]).") var input: String
    @Argument(help: "Output .jsonl file (never one of the inputs).") var output: String
    @Flag(help: "Replace an existing output file and its image folder.") var overwrite = false
    func run() async throws {
      let result = try DataTools.convert(input: try await HubDatasets.localPath(input), output: URL(fileURLWithPath: output), overwrite: overwrite)
      print("wrote \(result.records) records to \(result.output.path); \(result.imagesExtracted) images in \(result.imageFolder.path)")
    }
  }

  struct PrepareAOKVQA: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "prepare-aokvqa", abstract: "Prepare A-OKVQA for training (choices + label_idx), as the seed's script.")
    @Option(name: .customLong("input"), help: "A-OKVQA folder or files (JSON or Parquet), or hub:HuggingFaceM4/A-OKVQA:SPLIT; repeatable.")
    var inputs: [String]
    @Option(help: "Output folder.") var out: String
    @Option(help: "File of question ids to keep (one per line).") var questionIds: String?
    @Option(help: "Keep at most this many records per split.") var subsetSize: Int?
    @Flag(help: "Replace an existing output folder.") var overwrite = false
    func run() async throws {
      if let subsetSize, subsetSize < 0 { throw CLIError("--subset-size \(subsetSize) is negative") }
      var resolved: [String] = []
      for input in inputs { resolved.append(try await HubDatasets.localPath(input)) }
      let inputs = resolved
      let folder = URL(fileURLWithPath: out)
      try SafeOutput.refuseInputs(folder, inputs: try inputs.flatMap { try DataFiles.files(at: $0) })
      // Written into a temporary folder next to --out and renamed into place when complete.
      var staged = ""
      let lines = try SafeOutput.writeFolder(folder, overwrite: overwrite) { staging in
        staged = staging.path
        return try DataTools.prepareAOKVQA(inputs: inputs, outDirectory: staging,
                                           questionIDs: questionIds.map { URL(fileURLWithPath: $0) }, subsetSize: subsetSize)
      }
      lines.forEach { print($0.replacingOccurrences(of: staged, with: folder.path)) }
    }
  }
}

/// A command-line error: printed as one line `Error: ...`, exit status 1 (ArgumentParser's
/// `ValidationError` would exit 64 and print the usage).
struct CLIError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

/// The device of a `--device` value, checked up front: asking for CUDA where CUDA cannot be used
/// is one line naming the cause (what `vlmrl doctor` reports), never a crash inside libtorch.
func usableDevice(_ name: String) throws -> Device {
  guard let device = Device(name: name) else {
    throw CLIError("--device: unknown device '\(name)' (cpu, cuda, cuda:N)")
  }
  guard case .cuda(let index) = device else { return device }
  guard Torch.cudaAvailable else {
    let cause = Torch.loadCUDAError() ?? "libtorch_cuda loaded, but no CUDA device is visible"
    // libtorch may repeat the loader's message; keep each part once.
    var parts: [String] = []
    for part in cause.components(separatedBy: ";").map({ $0.trimmingCharacters(in: .whitespaces) })
    where !part.isEmpty && !parts.contains(where: { $0.contains(part) }) {
      parts.append(part)
    }
    throw CLIError("--device \(name): CUDA is not usable on this machine: \(parts.joined(separator: "; "))")
  }
  let count = Torch.cudaDeviceCount
  guard index >= 0, index < count else {
    throw CLIError("--device \(name): this machine has \(count) CUDA device(s), cuda:0 to cuda:\(count - 1)")
  }
  return device
}
