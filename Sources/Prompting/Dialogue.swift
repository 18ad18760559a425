import Datasets
import Foundation
import Jinja

/// A conversation laid out for teacher forcing (SFT): one sequence, `prompt.ids + tokens`, in which
/// every assistant turn is trained against the conversation before it.
public struct PreparedDialogue: @unchecked Sendable {
  /// The chat up to its first assistant turn, as `PromptBuilder.prepare` renders it (ending in the
  /// generation prompt, images processed and their pads expanded).
  public var prompt: PreparedPrompt
  /// The rest of the sequence: each assistant turn's tokens and the tokens between turns.
  public var tokens: [Int]
  /// One flag per token of `tokens`: true for an assistant turn's text and its closing `<|im_end|>`
  /// (the labels), false for the user turns and the template's tokens between answers (masked).
  public var trained: [Bool]
  /// Trained tokens of each assistant turn, in order.
  public var answerTokenCounts: [Int]

  /// How many tokens the loss reads.
  public var trainedTokenCount: Int { answerTokenCounts.reduce(0, +) }
}

extension PromptBuilder {
  /// What closes an assistant turn in the Qwen chat format; trained with the turn, so that the model
  /// learns to stop.
  public static let turnEnd = "<|im_end|>"

  /// Lays out `messages` (system, user and assistant turns; images in the turns before the first
  /// assistant turn) so that each assistant turn sees what the model sees when it generates that turn:
  /// the template's render of the turns before it with the generation prompt, then the turn's text and
  /// `<|im_end|>`, tokenized apart as generation produces them. Every render must continue the one
  /// before it (Qwen's templates repeat earlier turns unchanged), so the whole conversation is one
  /// sequence and each context is computed once. Errors are `PromptError`s naming the record.
  public func prepareDialogue(_ example: Example, messages: [ChatMessage]) throws -> PreparedDialogue {
    let answers = messages.indices.filter { messages[$0].role == "assistant" }
    guard let first = answers.first else {
      throw PromptError.template(source: example.source, message: "the conversation has no assistant turn to train on")
    }
    if let later = messages[first...].first(where: \.hasImages) {
      throw PromptError.template(source: example.source, message: "an image in a \(later.role) turn after the first answer; "
        + "images must come before the first assistant turn")
    }
    let prompt = try prepare(example, messages: Array(messages[..<first]))
    var rendered = Array(prompt.text.utf8)
    var tokens: [Int] = [], trained: [Bool] = [], counts: [Int] = []
    for index in answers {
      if index != first {
        // The user turns (and template tokens) between the previous answer and this one.
        let context = Array(try renderForGeneration(Array(messages[..<index]), source: example.source).utf8)
        guard context.starts(with: rendered) else {
          throw PromptError.template(source: example.source, message: "the chat template renders the turns before assistant "
            + "turn \(counts.count + 1) differently from the turns before it; multi-turn training needs a template that repeats "
            + "earlier turns unchanged")
        }
        let between = tokenizer.encode(String(decoding: context[rendered.count...], as: UTF8.self), addSpecialTokens: false)
        tokens += between
        trained += Array(repeating: false, count: between.count)
        rendered = context
      }
      let answer = messages[index].plainText + Self.turnEnd
      let ids = tokenizer.encode(answer, addSpecialTokens: false)
      tokens += ids
      trained += Array(repeating: true, count: ids.count)
      counts.append(ids.count)
      rendered += Array(answer.utf8)
    }
    return PreparedDialogue(prompt: prompt, tokens: tokens, trained: trained, answerTokenCounts: counts)
  }
}

extension ChatMessage {
  /// The message's text (its text parts joined).
  var plainText: String {
    switch content {
    case .text(let text): return text
    case .parts(let parts):
      return parts.map { part -> String in
        if case .text(let text) = part { return text }
        return ""
      }.joined()
    }
  }

  /// Whether the message holds an image (or video) part.
  var hasImages: Bool {
    guard case .parts(let parts) = content else { return false }
    return parts.contains { part in
      if case .text = part { return false }
      return true
    }
  }
}
