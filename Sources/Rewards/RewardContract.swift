// The reward contract (docs/rewards.md, "Contract"): what a reward receives (`RewardSample`), what it
// returns (`RewardFunction`), and the errors of reward construction and external rewards.
import Common
import Foundation

/// Sizes of one image of the prompt: as stored on disk and as fed to the vision tower.
public struct ImageGeometry: Sendable, Hashable {
  public var originalWidth: Int
  public var originalHeight: Int
  public var resizedWidth: Int
  public var resizedHeight: Int

  public init(originalWidth: Int, originalHeight: Int, resizedWidth: Int, resizedHeight: Int) {
    self.originalWidth = originalWidth
    self.originalHeight = originalHeight
    self.resizedWidth = resizedWidth
    self.resizedHeight = resizedHeight
  }

  /// An image that was not resized.
  public init(width: Int, height: Int) {
    self.init(originalWidth: width, originalHeight: height, resizedWidth: width, resizedHeight: height)
  }
}

/// Attention diagnostics of one rollout sample (heads and layers already averaged by the rollout
/// engine): the mass generated tokens put on prompt text vs image tokens, and the token counts.
public struct AttentionDiagnostics: Sendable, Hashable {
  public var textMass: Double
  public var visionMass: Double
  public var textTokens: Int
  public var visionTokens: Int

  public init(textMass: Double, visionMass: Double, textTokens: Int, visionTokens: Int) {
    self.textMass = textMass
    self.visionMass = visionMass
    self.textTokens = textTokens
    self.visionTokens = visionTokens
  }
}

/// One sample to score: the prompt, the model's completion, the prompt's images and the dataset
/// record's fields (`solution`, `bbox`, `abs_box`, `ground_truth`, `label_idx`, `choices`, ...).
public struct RewardSample: Sendable, Hashable {
  public var prompt: String
  public var completion: String
  public var images: [ImageGeometry]
  public var fields: [String: JSONValue]
  public var attention: AttentionDiagnostics?

  public init(
    prompt: String = "", completion: String, images: [ImageGeometry] = [],
    fields: [String: JSONValue] = [:], attention: AttentionDiagnostics? = nil
  ) {
    self.prompt = prompt
    self.completion = completion
    self.images = images
    self.fields = fields
    self.attention = attention
  }
}

/// A reward: one value per sample, or nil where it does not apply (excluded from means and sums).
public protocol RewardFunction: Sendable {
  /// The registry name (used as the metric key).
  var name: String { get }
  /// Scores a batch; the result has exactly one entry per sample.
  func score(_ batch: [RewardSample]) async throws -> [Double?]
  /// Scores a batch and reports extra metrics of the batch (name -> value; a persistent `command`
  /// reward passes on its program's). The default: `score` and no metrics.
  func scoreWithMetrics(_ batch: [RewardSample]) async throws -> (values: [Double?], metrics: [String: Double])
}

extension RewardFunction {
  public func scoreWithMetrics(_ batch: [RewardSample]) async throws -> (values: [Double?], metrics: [String: Double]) {
    (try await score(batch), [:])
  }
}

/// Errors of reward construction and of external rewards. Scoring errors never reach training:
/// the runner catches them, counts them and scores 0.
public enum RewardError: Error, CustomStringConvertible, Equatable {
  case unknownReward(name: String, known: [String])
  case badParameter(reward: String, parameter: String, message: String)
  /// A parameter key that none of `rewards` reads (a typo must never be silently ignored).
  case unknownParameter(parameter: String, rewards: [String], known: [String])
  case wrongCount(reward: String, expected: Int, got: Int)
  case external(reward: String, message: String)
  case badData(file: String, line: Int, message: String)

  public var description: String {
    switch self {
    case .unknownReward(let name, let known):
      return "unknown reward function '\(name)'; known: \(known.joined(separator: ", "))"
    case .badParameter(let reward, let parameter, let message):
      return "reward '\(reward)': parameter '\(parameter)': \(message)"
    case .unknownParameter(let parameter, let rewards, let known):
      let owners = rewards.count == 1 ? "reward '\(rewards[0])'" : "rewards \(rewards.joined(separator: ", "))"
      return "unknown parameter '\(parameter)' for \(owners); known: \(known.isEmpty ? "none" : known.joined(separator: ", "))"
    case .wrongCount(let reward, let expected, let got):
      return "reward '\(reward)' returned \(got) values for a batch of \(expected)"
    case .external(let reward, let message):
      return "reward '\(reward)': \(message)"
    case .badData(let file, let line, let message):
      return "\(file):\(line): \(message)"
    }
  }
}

/// A reward made from a synchronous per-sample closure (most rewards are pure functions of one
/// sample).
public struct SampleReward: RewardFunction {
  public let name: String
  private let body: @Sendable (RewardSample) -> Double?

  public init(name: String, _ body: @escaping @Sendable (RewardSample) -> Double?) {
    self.name = name
    self.body = body
  }

  public func score(_ batch: [RewardSample]) async throws -> [Double?] {
    batch.map { sample in
      guard let value = body(sample) else { return nil }
      return value.isFinite ? value : 0
    }
  }
}

/// Prints reward failures to stderr once per distinct (reward, message): a reward that fails the
/// same way every batch says so once, not thousands of times. The runner still counts every
/// failure (`RewardScores.errorCounts`). At most `capacity` distinct messages are remembered; past
/// that, one line says further messages are not printed.
public final class ErrorReporter: @unchecked Sendable {
  public static let shared = ErrorReporter { line in FileHandle.standardError.write(Data(line.utf8)) }

  private let lock = NSLock()
  private let write: @Sendable (String) -> Void
  private let capacity: Int
  private var seen: Set<String> = []
  private var printedLines: [String] = []
  private var saturated = false

  public init(capacity: Int = 256, write: @escaping @Sendable (String) -> Void) {
    self.capacity = capacity
    self.write = write
  }

  /// The lines printed so far (newest last).
  public var printed: [String] { lock.withLock { printedLines } }

  public func report(reward: String, message: String) {
    let key = "\(reward)\u{0}\(message)"
    let line: String? = lock.withLock {
      if seen.contains(key) { return nil }
      guard seen.count < capacity else {
        if saturated { return nil }
        saturated = true
        return "vlmrl: reward errors: more than \(capacity) distinct messages; further ones are not printed\n"
      }
      seen.insert(key)
      let line = "vlmrl: reward '\(reward)' failed: \(message)\n"
      printedLines.append(line)
      return line
    }
    if let line { write(line) }
  }
}
