import Foundation

/// One scored completion, as the rollout log shows it.
public struct RolloutSample: Sendable, Equatable {
  /// Which prompt of the step it answers (samples of one prompt share it).
  public var promptIndex: Int
  public var prompt: String
  public var completion: String
  /// Each reward function's value in config order; nil where the function did not apply.
  public var rewards: [(name: String, value: Double?)]
  /// The weighted total; nil when every function said nil.
  public var total: Double?
  public var advantage: Double
  /// Completion tokens, when known.
  public var completionTokens: Int?
  /// True when the completion hit `max_completion_length`.
  public var truncated: Bool

  public init(promptIndex: Int, prompt: String, completion: String, rewards: [(name: String, value: Double?)],
              total: Double?, advantage: Double, completionTokens: Int? = nil, truncated: Bool = false) {
    self.promptIndex = promptIndex
    self.prompt = prompt
    self.completion = completion
    self.rewards = rewards
    self.total = total
    self.advantage = advantage
    self.completionTokens = completionTokens
    self.truncated = truncated
  }

  public static func == (a: RolloutSample, b: RolloutSample) -> Bool {
    a.promptIndex == b.promptIndex && a.prompt == b.prompt && a.completion == b.completion
      && a.rewards.map(\.name) == b.rewards.map(\.name) && a.rewards.map(\.value) == b.rewards.map(\.value)
      && a.total == b.total && a.advantage == b.advantage && a.completionTokens == b.completionTokens
      && a.truncated == b.truncated
  }
}

/// Markdown rollout logs (`rollouts/step_<n>.md`, the MDI fork's `realtime_rollout_logging`):
/// each prompt once, then each of its completions with per-function rewards, total and advantage.
/// Samples are appended as they are scored, so `tail -f` follows the run.
public struct RolloutLog: Sendable {
  public let directory: URL

  public init(directory: URL) { self.directory = directory }

  public func url(step: Int) -> URL { directory.appendingPathComponent("step_\(step).md") }

  /// Appends `samples` to the step's file (creating it with a heading). `after` is the sample that
  /// was written last by an earlier call for this step, so a prompt is not repeated.
  @discardableResult
  public func append(step: Int, samples: [RolloutSample], after previous: RolloutSample? = nil) throws -> URL {
    let file = url(step: step)
    let manager = FileManager.default
    var text = ""
    if !manager.fileExists(atPath: file.path) { text += "# Step \(step)\n" }
    var lastPrompt = previous?.promptIndex
    for sample in samples {
      if sample.promptIndex != lastPrompt {
        text += "\n## Prompt \(sample.promptIndex + 1)\n\n" + Self.fenced(sample.prompt)
        lastPrompt = sample.promptIndex
      }
      text += Self.render(sample)
    }
    do {
      try manager.createDirectory(at: directory, withIntermediateDirectories: true)
      if !manager.fileExists(atPath: file.path) { _ = manager.createFile(atPath: file.path, contents: nil) }
      let handle = try FileHandle(forWritingTo: file)
      defer { try? handle.close() }
      try handle.seekToEnd()
      try handle.write(contentsOf: Data(text.utf8))
    } catch {
      throw TrainingError.io(path: file.path, reason: "cannot write the rollout log (\(error.localizedDescription))")
    }
    return file
  }

  /// One sample: its completion and a table of rewards, total and advantage.
  static func render(_ sample: RolloutSample) -> String {
    var notes: [String] = []
    if let tokens = sample.completionTokens { notes.append("\(tokens) tokens") }
    if sample.truncated { notes.append("truncated") }
    var text = "\n### Completion" + (notes.isEmpty ? "" : " (\(notes.joined(separator: ", ")))") + "\n\n"
    text += fenced(sample.completion) + "\n| reward | value |\n| --- | ---: |\n"
    for (name, value) in sample.rewards { text += "| \(name) | \(format(value)) |\n" }
    text += "| **total** | \(format(sample.total)) |\n| **advantage** | \(format(sample.advantage)) |\n"
    return text
  }

  static func format(_ value: Double?) -> String {
    guard let value else { return "n/a" }
    return String(format: "%.4f", value)
  }

  /// A code block whose fence is longer than any run of backticks in `text`.
  static func fenced(_ text: String) -> String {
    var longest = 0
    var run = 0
    for character in text {
      run = character == "`" ? run + 1 : 0
      longest = max(longest, run)
    }
    let fence = String(repeating: "`", count: max(3, longest + 1))
    return "\(fence)text\n\(text)\(text.hasSuffix("\n") ? "" : "\n")\(fence)\n"
  }
}
