import Common
import Foundation

extension ExampleBuilder {
  /// The `<image>` marker of LLaVA-style conversations.
  static let imageMarker = "<image>"

  /// SFT conversations and region captioning: turns, the first user turn as the prompt with images
  /// where its `<image>` markers sit (before the text when there are none), and for region
  /// captioning the mask, the captions and any judge questions.
  func conversation(_ fields: Fields, kind: RecordKind, location: RecordLocation) throws -> Example {
    let turns = try conversationTurns(fields)
    let imageKey = fields.has("image") ? "image" : (fields.has("image_path") ? "image_path" : nil)
    let images = try imageKey.map { try fields.images($0, resolver: resolver, location: location, allowEmpty: true) } ?? []
    if kind == .regionCaption, images.isEmpty {
      throw RecordProblem(.missingField, field: "image", "region captioning needs an image")
    }
    let markers = turns.filter { $0.role == "user" }
      .reduce(0) { $0 + $1.text.components(separatedBy: Self.imageMarker).count - 1 }
    guard markers == 0 || markers == images.count else {
      throw RecordProblem(
        .imageMarkerMismatch, field: "conversations",
        "\(markers) <image> markers for \(images.count) images")
    }
    var prompt = promptParts(firstUserText: turns.first { $0.role == "user" }?.text, images: images,
                             markersPresent: markers > 0)
    var reward: [String: JSONValue] = [:]
    if kind == .regionCaption {
      // The region: a mask (`mask_rle`), a box (`bbox`, original pixels), or both.
      if fields.has("mask_rle") { reward["mask_rle"] = try maskRLE(fields) }
      if fields.has("bbox") {
        let box = try fields.value("bbox")
        guard let numbers = box.arrayValue?.compactMap(\.doubleValue), numbers.count == 4, box.arrayValue?.count == 4,
          numbers.allSatisfy(\.isFinite), numbers[2] > numbers[0], numbers[3] > numbers[1]
        else { throw RecordProblem(.wrongType, field: "bbox", "expected [x1, y1, x2, y2] with x2 > x1 and y2 > y1") }
        reward["bbox"] = box
      }
      guard reward["mask_rle"] != nil || reward["bbox"] != nil else {
        throw RecordProblem(.missingField, field: "mask_rle", "region captioning needs a region: mask_rle or bbox")
      }
      let captions = turns.filter { $0.role == "assistant" }.map(\.text)
      guard !captions.isEmpty else {
        throw RecordProblem(.missingField, field: "conversations", "no caption (assistant turn) found")
      }
      reward["captions"] = .array(captions.map { .string($0) })
      if fields.has("judge_questions") { reward["judge_questions"] = try fields.value("judge_questions") }
      if !turns.contains(where: { $0.role == "user" }) {
        prompt = imageParts(images) + [.text(Prompts.describeRegion)]
      }
    } else {
      guard turns.contains(where: { $0.role == "user" }) else {
        throw RecordProblem(.missingField, field: "conversations", "no human turn found")
      }
    }
    let imageField = imageKey ?? "image"
    // The record's own system turns (before the first other turn) are the prompt's system turn.
    let systemTurns = turns.prefix { $0.role == "system" }
    return Example(
      source: location, kind: kind, prompt: prompt, conversation: turns, rewardFields: reward,
      images: try imageInfos(images, field: imageField, statedSize: nil),
      system: systemTurns.isEmpty ? nil : systemTurns.map(\.text).joined(separator: "\n\n"))
  }

  /// `[{from: human|gpt|system, value}]` (also `{role, content}`); a plain list of strings is a list
  /// of captions (assistant turns).
  private func conversationTurns(_ fields: Fields) throws -> [ConversationTurn] {
    let value = try fields.value("conversations")
    guard let items = value.arrayValue else {
      throw RecordProblem(.wrongType, field: "conversations", "expected a list of turns")
    }
    return try items.map { item in
      if let text = item.stringValue { return ConversationTurn(role: "assistant", text: text) }
      guard let turn = item.objectValue,
        let speaker = (turn["from"] ?? turn["role"])?.stringValue,
        let text = (turn["value"] ?? turn["content"])?.stringValue
      else {
        throw RecordProblem(.wrongType, field: "conversations", "turn \(preview(item)) needs 'from' and 'value'")
      }
      guard let role = Self.role(speaker) else {
        throw RecordProblem(.wrongType, field: "conversations", "unknown speaker '\(speaker)'")
      }
      return ConversationTurn(role: role, text: text)
    }
  }

  static func role(_ speaker: String) -> String? {
    switch speaker.lowercased() {
    case "human", "user": return "user"
    case "gpt", "assistant", "model": return "assistant"
    case "system": return "system"
    default: return nil
    }
  }

  /// Splits the first user turn at its `<image>` markers. Images whose markers sit in later turns
  /// stay out of the prompt (they appear in `conversation`).
  private func promptParts(firstUserText: String?, images: [ImageSource], markersPresent: Bool) -> [PromptPart] {
    guard let text = firstUserText else { return imageParts(images) }
    guard markersPresent else { return imageParts(images) + [.text(text)] }
    var parts: [PromptPart] = []
    var remaining = images[...]
    let pieces = text.components(separatedBy: Self.imageMarker)
    for (offset, piece) in pieces.enumerated() {
      if !piece.isEmpty { parts.append(.text(piece)) }
      if offset < pieces.count - 1, let image = remaining.popFirst() { parts.append(.image(image)) }
    }
    return parts
  }

  /// A COCO RLE mask `{size: [h, w], counts: string | [int]}` or a list of them.
  private func maskRLE(_ fields: Fields) throws -> JSONValue {
    let value = try fields.value("mask_rle")
    let masks = value.arrayValue ?? [value]
    guard !masks.isEmpty else { throw RecordProblem(.missingField, field: "mask_rle", "empty mask list") }
    for mask in masks {
      guard let size = mask["size"]?.arrayValue, size.count == 2,
        let height = size[0].intValue, let width = size[1].intValue, height > 0, width > 0
      else {
        throw RecordProblem(.wrongType, field: "mask_rle", "mask needs 'size': [height, width]")
      }
      let counts = mask["counts"]
      let validCounts = counts?.stringValue != nil || (counts?.arrayValue?.allSatisfy { $0.intValue != nil } ?? false)
      guard validCounts else {
        throw RecordProblem(.wrongType, field: "mask_rle", "mask 'counts' must be an RLE string or a list of integers")
      }
    }
    return value
  }
}
