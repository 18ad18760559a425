import Foundation

/// Which columns of a TRL / Hugging Face or EasyR1 record hold the prompt, the images and the ground
/// truth, and the system turn for prompts without one. Set in a dataset YAML entry (`prompt_key`,
/// `image_key`, `answer_key`, `solution_key`, `system_prompt`) or in `LoadOptions.columns`; an
/// entry's keys win over the options'. Unset keys are detected (docs/data.md).
public struct ColumnMapping: Sendable, Equatable {
  /// The prompt column: chat messages (kind `chat`) or a string (kind `prompt`). When set, every
  /// record of the entry is read through the mapping, whatever other fields it has.
  public var promptKey: String?
  /// The image column (one image or a list). Default: `images`, else `image`.
  public var imageKey: String?
  /// The ground-truth column under EasyR1's name (`answer_key`); the rewards read it as `solution`.
  public var answerKey: String?
  /// The ground-truth column under TRL's name (`solution_key`); the rewards read it as `solution`.
  public var solutionKey: String?
  /// A system turn added to every prompt that has none (any record kind).
  public var systemPrompt: String?

  public init(
    promptKey: String? = nil, imageKey: String? = nil, answerKey: String? = nil, solutionKey: String? = nil,
    systemPrompt: String? = nil
  ) {
    self.promptKey = promptKey
    self.imageKey = imageKey
    self.answerKey = answerKey
    self.solutionKey = solutionKey
    self.systemPrompt = systemPrompt
  }

  /// The dataset YAML keys, in the order docs/data.md lists them.
  static let yamlKeys = ["prompt_key", "image_key", "answer_key", "solution_key", "system_prompt"]

  /// This mapping's keys, with unset ones taken from `defaults`.
  public func over(_ defaults: ColumnMapping) -> ColumnMapping {
    ColumnMapping(
      promptKey: promptKey ?? defaults.promptKey, imageKey: imageKey ?? defaults.imageKey,
      answerKey: answerKey ?? defaults.answerKey, solutionKey: solutionKey ?? defaults.solutionKey,
      systemPrompt: systemPrompt ?? defaults.systemPrompt)
  }

  /// The ground-truth column the user named, if any. `answer_key` and `solution_key` are the same
  /// setting under EasyR1's and TRL's names, so two different columns are an error.
  func groundTruthKey(source: String) throws -> String? {
    if let answerKey, let solutionKey, answerKey != solutionKey {
      throw DatasetError.invalidConfig(
        source, reason: "answer_key '\(answerKey)' and solution_key '\(solutionKey)' name different columns; "
          + "both name the ground-truth column the rewards read as 'solution', so set one")
    }
    return solutionKey ?? answerKey
  }

  /// Checks the keys are usable: non-empty names, and one ground-truth column.
  func validate(source: String) throws {
    let named = [("prompt_key", promptKey), ("image_key", imageKey), ("answer_key", answerKey), ("solution_key", solutionKey)]
    for (key, value) in named where value?.isEmpty == true {
      throw DatasetError.invalidConfig(source, reason: "\(key) is empty; name a column or leave it out")
    }
    if let promptKey, promptKey == imageKey {
      throw DatasetError.invalidConfig(source, reason: "prompt_key and image_key both name '\(promptKey)'")
    }
    _ = try groundTruthKey(source: source)
  }
}

/// The columns one chat or prompt record was read from; `vlmrl data inspect` and the load summary
/// show them per source, so a user sees which mapping was chosen.
struct ResolvedColumns: Hashable, Sendable, CustomStringConvertible {
  var prompt: String
  /// Whether the prompt column held chat messages (else a string).
  var messages: Bool
  var image: String?
  var groundTruth: String?

  var description: String {
    let promptPart = "prompt=\(prompt) (\(messages ? "chat messages" : "text"))"
    let imagePart = "images=\(image ?? "none")"
    let truth = "ground truth=\(groundTruth ?? "none")"
    return [promptPart, imagePart, truth].joined(separator: ", ")
  }
}
