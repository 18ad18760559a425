import Common
import Foundation

/// Options of record parsing (set from the loader's `LoadOptions`).
struct ParseOptions: Sendable {
  var recPrompt: RECPromptStyle = .r1
  /// Read image headers for sizes the record does not state, and check that image files exist.
  var probeImageSizes = true
  /// Column mapping of the chat and prompt kinds, and the default system prompt (validated by the loader).
  var columns = ColumnMapping()
}

/// Turns raw records into typed examples.
struct ExampleBuilder {
  var options: ParseOptions
  var resolver: PathResolver

  /// Detects the kind of a record from its fields (docs/data.md lists the order). A `prompt_key`
  /// makes every record a chat or prompt record; `prompt` and `messages` (TRL) come right after
  /// `conversations`; EasyR1's `problem` + `answer` comes last, so every earlier kind is read as before.
  static func detectKind(_ fields: Fields, columns: ColumnMapping = ColumnMapping()) -> RecordKind? {
    let keys = fields.keys
    if columns.promptKey != nil { return mappedKind(fields, columns: columns) }
    if keys.contains("conversations") {
      return keys.contains("mask_rle") ? .regionCaption : .sftConversation
    }
    if promptColumns.contains(where: fields.has) { return mappedKind(fields, columns: columns) }
    if keys.contains("mask_rle") { return .regionCaption }
    if keys.contains("abs_box") { return .multiBox }
    if keys.contains("bbox") { return .singleBox }
    if keys.contains("choices"), keys.contains("question") { return .aokvqa }
    if keys.contains("problem"), keys.contains("solution") {
      let solution = fields.raw.fields["solution"]
      if keys.contains("normal_caption") || solution?.arrayValue != nil { return .rec }
      return .r1vQA
    }
    if keys.contains("question"), keys.contains("ground_truth") { return .r1vTest }
    return mappedKind(fields, columns: columns)
  }

  func build(_ raw: RawRecord, location: RecordLocation, kind requested: RecordKind?) throws -> Example {
    try buildWithColumns(raw, location: location, kind: requested).example
  }

  /// Builds the example and, for the chat and prompt kinds, says which columns it was read from.
  /// `system_prompt` becomes the system turn of an example without its own.
  func buildWithColumns(
    _ raw: RawRecord, location: RecordLocation, kind requested: RecordKind?
  ) throws -> (example: Example, columns: ResolvedColumns?) {
    let fields = Fields(raw: raw)
    guard let kind = requested ?? Self.detectKind(fields, columns: options.columns) else {
      let names = fields.keys.sorted().joined(separator: ", ")
      throw RecordProblem(.unknownKind, field: nil, "fields [\(names)] match no record kind (see docs/data.md)")
    }
    try Self.rejectVisionTokens(raw)
    var example: Example
    var columns: ResolvedColumns?
    switch kind {
    case .singleBox, .multiBox: example = try grounding(fields, kind: kind, location: location)
    case .rec: example = try rec(fields, location: location)
    case .r1vQA: example = try r1vQA(fields, location: location)
    case .r1vTest: example = try r1vTest(fields, location: location)
    case .aokvqa: example = try aokvqa(fields, location: location)
    case .sftConversation, .regionCaption: example = try conversation(fields, kind: kind, location: location)
    case .chat, .textPrompt: (example, columns) = try mappedRecord(fields, kind: kind, location: location)
    }
    if example.system == nil { example.system = options.columns.systemPrompt }
    return (example, columns)
  }

  // MARK: Kinds

  private func grounding(_ fields: Fields, kind: RecordKind, location: RecordLocation) throws -> Example {
    let instruction = try fields.string("instruction")
    let images = try fields.images("image_path", resolver: resolver, location: location)
    let width = try fields.int("width")
    let height = try fields.int("height")
    guard width > 0, height > 0 else {
      throw RecordProblem(.wrongType, field: "width", "image size \(width)x\(height) is not positive")
    }
    let infos = try imageInfos(images, field: "image_path", statedSize: (width, height))
    var reward: [String: JSONValue] = [:]
    if kind == .singleBox {
      let value = try fields.value("bbox")
      try Box.parse(value, field: "bbox").check(insideWidth: width, height: height, field: "bbox")
      reward["bbox"] = value
    } else {
      let value = try fields.value("abs_box")
      guard let labels = value.objectValue else {
        throw RecordProblem(.wrongType, field: "abs_box", "expected {label: [[x1,y1,x2,y2], ...]}")
      }
      for (label, boxes) in labels {
        guard let list = boxes.arrayValue else {
          throw RecordProblem(.wrongType, field: "abs_box", "label '\(label)' does not hold a list of boxes")
        }
        for box in list {
          try Box.parse(box, field: "abs_box").check(insideWidth: width, height: height, field: "abs_box")
        }
      }
      reward["abs_box"] = value
    }
    return Example(
      source: location, kind: kind, prompt: imageParts(images) + [.text(instruction)],
      rewardFields: reward, images: infos)
  }

  private func rec(_ fields: Fields, location: RecordLocation) throws -> Example {
    let images = try fields.images("image", resolver: resolver, location: location)
    let text: String
    switch options.recPrompt {
    case .r1: text = Prompts.recR1(problem: try fields.string("problem"))
    case .baseline: text = Prompts.recBaseline(caption: try fields.string("normal_caption"))
    }
    let infos = try imageInfos(images, field: "image", statedSize: nil)
    let solution = try fields.value("solution")
    try Box.parse(solution, field: "solution")
      .check(insideWidth: infos.first?.width, height: infos.first?.height, field: "solution")
    return Example(
      source: location, kind: .rec, prompt: imageParts(images) + [.text(text)],
      rewardFields: ["solution": solution], images: infos)
  }

  private func r1vQA(_ fields: Fields, location: RecordLocation) throws -> Example {
    let images = try fields.images("image", resolver: resolver, location: location)
    let problem = try fields.string("problem")
    let solution = try fields.value("solution")
    let solutionText: String
    switch solution {
    case .string(let text): solutionText = text
    case .int, .double: solutionText = solution.jsonString
    default: throw RecordProblem(.wrongType, field: "solution", "expected a string, found \(preview(solution))")
    }
    return Example(
      source: location, kind: .r1vQA, prompt: imageParts(images) + [.text(Prompts.r1v(question: problem))],
      rewardFields: ["solution": .string(solutionText)],
      images: try imageInfos(images, field: "image", statedSize: nil))
  }

  private func r1vTest(_ fields: Fields, location: RecordLocation) throws -> Example {
    let key = fields.has("image_path") ? "image_path" : "image"
    let images = try fields.images(key, resolver: resolver, location: location)
    let question = try fields.string("question")
    let truth = try fields.value("ground_truth")
    return Example(
      source: location, kind: .r1vTest, prompt: imageParts(images) + [.text(Prompts.r1v(question: question))],
      rewardFields: ["ground_truth": truth], images: try imageInfos(images, field: key, statedSize: nil))
  }

  private func aokvqa(_ fields: Fields, location: RecordLocation) throws -> Example {
    let images = try aokvqaImages(fields, location: location)
    let question = try fields.string("question")
    let choices = try fields.stringList("choices")
    guard (2...Prompts.optionLetters.count).contains(choices.count) else {
      throw RecordProblem(.wrongType, field: "choices", "expected 2 to 10 choices, found \(choices.count)")
    }
    var reward: [String: JSONValue] = ["choices": .array(choices.map { .string($0) })]
    let labelKey = fields.has("label_idx") ? "label_idx" : "correct_choice_idx"
    if fields.has(labelKey) {
      let label = try fields.int(labelKey)
      guard choices.indices.contains(label) else {
        throw RecordProblem(.invalidLabel, field: labelKey, "label \(label) is not an index of \(choices.count) choices")
      }
      reward["label_idx"] = .int(label)
    } else {
      reward["label_idx"] = .null  // the test split has no labels
    }
    if fields.has("direct_answers") {
      reward["direct_answers"] = .array(try fields.stringList("direct_answers").map { .string($0) })
    }
    return Example(
      source: location, kind: .aokvqa,
      prompt: imageParts(images) + [.text(Prompts.multipleChoice(question: question, choices: choices))],
      rewardFields: reward, images: try imageInfos(images, field: "image", statedSize: nil))
  }

  /// A-OKVQA images: `image` (path or struct), or `image_id` as a COCO 2017 file name
  /// (`000000299207.jpg`) under the image root.
  private func aokvqaImages(_ fields: Fields, location: RecordLocation) throws -> [ImageSource] {
    if fields.has("image") { return try fields.images("image", resolver: resolver, location: location) }
    if fields.has("image_path") { return try fields.images("image_path", resolver: resolver, location: location) }
    let imageID = try fields.int("image_id")
    let name = String(format: "%012d.jpg", imageID)
    return [.file(resolver.resolve(name))]
  }

  // MARK: Helpers

  /// The special tokens the processor places around and for images and videos. Text that holds
  /// one would be tokenized as the token itself and break the image-token count.
  static let visionTokens = [
    "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
  ]

  /// Rejects a record whose text (any string field, nested ones included) holds a vision token.
  static func rejectVisionTokens(_ raw: RawRecord) throws {
    func find(_ value: JSONValue) -> String? {
      switch value {
      case .string(let text):
        guard text.contains("<|") else { return nil }
        return visionTokens.first { text.contains($0) }
      case .array(let items): return items.lazy.compactMap(find).first
      case .object(let object): return object.keys.sorted().lazy.compactMap { find(object[$0]!) }.first
      default: return nil
      }
    }
    for key in raw.fields.keys.sorted() {
      if let token = find(raw.fields[key]!) {
        throw RecordProblem(
          .visionTokenInText, field: key, "text contains the special token \(token) (the processor inserts image tokens itself)")
      }
    }
  }

  func imageParts(_ images: [ImageSource]) -> [PromptPart] { images.map { .image($0) } }

  /// Sizes of the images: stated by the record, read from headers, or unknown (probing off).
  func imageInfos(_ images: [ImageSource], field: String, statedSize: (Int, Int)?) throws -> [ImageInfo] {
    try images.map { source in
      if options.probeImageSizes, case .file(let url) = source,
        !FileManager.default.fileExists(atPath: url.path)
      {
        throw RecordProblem(.imageNotFound, field: field, "no image file at \(url.path)")
      }
      if let statedSize {
        if options.probeImageSizes { try checkStatedSize(source, field: field, stated: statedSize) }
        return ImageInfo(source: source, width: statedSize.0, height: statedSize.1)
      }
      guard options.probeImageSizes else { return ImageInfo(source: source) }
      do {
        let size = try ImageLoader.size(source)
        return ImageInfo(source: source, width: size.width, height: size.height)
      } catch {
        throw RecordProblem(.unreadableImage, field: field, "\(error)")
      }
    }
  }
}

extension ExampleBuilder {
  /// A record's `width`/`height` must match the image: boxes are checked and rewarded in that frame.
  /// Either orientation is accepted (annotations may predate the EXIF rotation).
  func checkStatedSize(_ source: ImageSource, field: String, stated: (Int, Int)) throws {
    let size: (width: Int, height: Int)
    do { size = try ImageLoader.size(source) } catch {
      throw RecordProblem(.unreadableImage, field: field, "\(error)")
    }
    let matches = (size.width == stated.0 && size.height == stated.1) || (size.width == stated.1 && size.height == stated.0)
    guard matches else {
      throw RecordProblem(
        .imageSizeMismatch, field: "width",
        "the record states \(stated.0)x\(stated.1) but \(source.name) is \(size.width)x\(size.height)")
    }
  }
}
