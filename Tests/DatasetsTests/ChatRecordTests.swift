import Common
import Foundation
import Testing

@testable import Datasets

/// TRL / Hugging Face conversational and standard prompts, EasyR1 records, column mapping and
/// system turns (docs/data.md, "Chat and prompt records").
@Suite struct ChatRecordTests {
  /// One JSON-lines file in a fresh folder with two 20x10 and 8x8 PNGs beside it.
  private func dataFile(_ lines: [String], name: String = "data.jsonl", function: String = #function) throws -> URL {
    let folder = try makeTempFolder(function)
    try writePNG(folder, "a.png", width: 20, height: 10)
    try writePNG(folder, "b.png", width: 8, height: 8)
    return try writeText(folder, name, lines.joined(separator: "\n"))
  }

  private func load(_ url: URL, options: LoadOptions = LoadOptions()) throws -> LoadedDataset {
    try DatasetLoader.load(path: url.path, options: options)
  }

  // MARK: TRL conversational

  @Test func conversationalPromptKeepsSystemPartsAndOtherColumns() throws {
    let url = try dataFile([
      #"{"prompt": [{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is left?"}, {"type": "image"}, {"type": "text", "text": " And right?"}]}], "images": ["a.png", "b.png"], "solution": "red", "difficulty": 2, "tags": ["x"]}"#,
    ])
    let loaded = try load(url)
    let example = try #require(loaded.examples.first)
    #expect(example.kind == .chat)
    #expect(example.system == "Answer in one word.")
    let folder = url.deletingLastPathComponent()
    #expect(example.prompt == [
      .image(.file(folder.appendingPathComponent("a.png"))), .text("What is left?"),
      .image(.file(folder.appendingPathComponent("b.png"))), .text(" And right?"),
    ])
    #expect(example.images.map(\.width) == [20, 8])
    #expect(example.rewardFields == ["solution": .string("red"), "difficulty": .int(2), "tags": .array([.string("x")])])
    #expect(example.conversation.isEmpty)
    #expect(loaded.summary.sources.first?.columns == ["chat: prompt=prompt (chat messages), images=images, ground truth=solution": 1])
  }

  @Test func stringContentWithMarkersAndOneImage() throws {
    let url = try dataFile([
      #"{"prompt": [{"role": "user", "content": "Look: <image> how many?"}], "image": "a.png", "answer": 3}"#,
      #"{"prompt": [{"role": "user", "content": "No marker here."}], "image": {"bytes": null, "path": "b.png"}, "solution": "4"}"#,
    ])
    let examples = try load(url).examples
    try #require(examples.count == 2)
    #expect(examples[0].renderedPrompt == "Look: <image> how many?")
    #expect(examples[0].system == nil)
    // `answer` is the ground truth when there is no `solution` (EasyR1's name); both reach the rewards.
    #expect(examples[0].rewardFields["solution"] == .int(3))
    #expect(examples[0].rewardFields["answer"] == .int(3))
    #expect(examples[1].renderedPrompt == "<image>No marker here.")
    #expect(examples[1].images.first?.width == 8)
  }

  @Test func messagesWithAnAnswerAreAConversation() throws {
    let url = try dataFile([
      #"{"messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "<image>Color?"}, {"role": "assistant", "content": "Gray."}], "images": ["a.png"]}"#,
    ])
    let example = try #require(try load(url).examples.first)
    #expect(example.kind == .chat)
    #expect(example.system == "Be terse.")
    #expect(example.renderedPrompt == "<image>Color?")
    #expect(example.conversation.map(\.role) == ["system", "user", "assistant"])
    #expect(example.conversation.last?.text == "Gray.")
    #expect(example.rewardFields.isEmpty)
  }

  @Test func inlineImagePartsAndTextOnlyPrompts() throws {
    let url = try dataFile([
      #"{"prompt": [{"role": "user", "content": [{"type": "image", "image": "b.png"}, {"type": "text", "text": "Shape?"}]}]}"#,
      #"{"prompt": [{"role": "user", "content": "Just text."}], "images": []}"#,
    ])
    let examples = try load(url).examples
    try #require(examples.count == 2)
    #expect(examples[0].images.map(\.width) == [8])
    #expect(examples[0].renderedPrompt == "<image>Shape?")
    #expect(examples[1].prompt == [.text("Just text.")] && examples[1].images.isEmpty)
  }

  // MARK: TRL standard and EasyR1

  @Test func standardPromptString() throws {
    let url = try dataFile([#"{"prompt": "Describe the image.", "image": "a.png", "solution": "gray"}"#])
    let example = try #require(try load(url).examples.first)
    #expect(example.kind == .textPrompt)
    #expect(example.renderedPrompt == "<image>Describe the image.")
    #expect(example.rewardFields == ["solution": .string("gray")])
  }

  @Test func easyR1ProblemAnswerImages() throws {
    let url = try dataFile([
      #"{"images": ["a.png", "b.png"], "problem": "<image><image>Which is wider? Answer 1 or 2.", "answer": "1"}"#,
    ])
    let loaded = try load(url)
    let example = try #require(loaded.examples.first)
    #expect(example.kind == .textPrompt)
    #expect(example.renderedPrompt == "<image><image>Which is wider? Answer 1 or 2.")
    #expect(example.images.map(\.width) == [20, 8])
    #expect(example.rewardFields["solution"] == .string("1"))
    #expect(example.rewardFields["answer"] == .string("1"))
    #expect(loaded.summary.lines.contains("    columns prompt: prompt=problem (text), images=images, ground truth=answer: 1"))
  }

  @Test func existingKindsAreDetectedAsBefore() throws {
    let url = try dataFile([
      #"{"image": "a.png", "problem": "How many?", "solution": "<answer> 2 </answer>"}"#,
      #"{"image": "a.png", "problem": "How many?"}"#,
      #"{"image": "a.png", "problem": "How many?", "solution": "3", "prompt": null, "images": null}"#,
    ])
    let loaded = try load(url)
    // A null `prompt` column (a Parquet file mixing layouts) does not take a record from its kind.
    #expect(loaded.examples.map(\.kind) == [.r1vQA, .r1vQA])
    #expect(loaded.examples.first?.rewardFields == ["solution": .string("<answer> 2 </answer>")])
    #expect(loaded.summary.skippedByReason == [.unknownKind: 1])
  }

  // MARK: Column mapping and system prompts

  @Test func yamlColumnMappingAndSystemPrompt() throws {
    let url = try dataFile([
      #"{"question": "<image>What is it?", "pics": ["a.png"], "gt": "a square", "id": 7}"#,
      #"{"question": "What is it?", "pics": "b.png", "gt": "a dot", "id": 8}"#,
    ])
    let yaml = try writeText(url.deletingLastPathComponent(), "data.yaml", """
      datasets:
        - json_path: data.jsonl
          prompt_key: question
          image_key: pics
          answer_key: gt
          system_prompt: You are a careful observer.
      """)
    let loaded = try DatasetLoader.load(try DatasetConfig.load(yaml))
    try #require(loaded.examples.count == 2)
    #expect(loaded.examples.allSatisfy { $0.kind == .textPrompt && $0.system == "You are a careful observer." })
    #expect(loaded.examples[0].rewardFields == ["solution": .string("a square"), "gt": .string("a square"), "id": .int(7)])
    #expect(loaded.examples[1].renderedPrompt == "<image>What is it?")
    #expect(loaded.summary.sources.first?.columns == ["prompt: prompt=question (text), images=pics, ground truth=gt": 2])
  }

  @Test func loadOptionsMappingAndEntryOverride() throws {
    let url = try dataFile([#"{"q": "Hi?", "img": "a.png", "truth": "yes", "alt": "no"}"#])
    var options = LoadOptions()
    options.columns = ColumnMapping(promptKey: "q", imageKey: "img", solutionKey: "truth")
    let example = try #require(try load(url, options: options).examples.first)
    #expect(example.rewardFields["solution"] == .string("yes"))
    #expect(example.renderedPrompt == "<image>Hi?")
    // An entry's own key wins over the options'.
    let entry = DatasetEntry(path: url.path, columns: ColumnMapping(solutionKey: "alt"))
    let overridden = try DatasetLoader.load(DatasetConfig(entries: [entry]), options: options)
    #expect(overridden.examples.first?.rewardFields["solution"] == .string("no"))
  }

  @Test func systemPromptFillsOnlyPromptsWithoutOne() throws {
    let url = try dataFile([
      #"{"image": "a.png", "problem": "How many?", "solution": "2"}"#,
      #"{"prompt": [{"role": "system", "content": "Own."}, {"role": "user", "content": "Q"}]}"#,
      #"{"image": "a.png", "conversations": [{"from": "system", "value": "SFT system."}, {"from": "human", "value": "<image>Q"}, {"from": "gpt", "value": "A"}]}"#,
    ])
    var options = LoadOptions()
    options.columns.systemPrompt = "Default."
    let examples = try load(url, options: options).examples
    #expect(examples.map(\.system) == ["Default.", "Own.", "SFT system."])
    #expect(examples.map(\.kind) == [.r1vQA, .chat, .sftConversation])
    // Without system_prompt the R1-V record has no system turn (the template's default applies).
    #expect(try load(url).examples.first?.system == nil)
  }

  @Test func mappingErrorsNameTheKeyOrColumn() throws {
    let url = try dataFile([#"{"prompt": "Q", "image": "a.png"}"#])
    var options = LoadOptions()
    options.columns = ColumnMapping(answerKey: "answer", solutionKey: "solution")
    #expect {
      try load(url, options: options)
    } throws: { error in
      "\(error)".contains("answer_key 'answer' and solution_key 'solution' name different columns")
    }
    options.columns = ColumnMapping(promptKey: "question", solutionKey: "gt")
    let missingPrompt = try load(url, options: options)
    #expect(missingPrompt.summary.badRecords.first?.field == "question")
    #expect(missingPrompt.summary.badRecords.first?.reason == .missingField)
    options.columns = ColumnMapping(solutionKey: "gt")
    let missingTruth = try load(url, options: options)
    #expect(missingTruth.summary.badRecords.first?.field == "gt")
    #expect("\(missingTruth.summary.badRecords.first!)".contains("data.jsonl #0 field 'gt': missing field"))
    options.columns = ColumnMapping(imageKey: "pictures")
    #expect(try load(url, options: options).summary.badRecords.first?.field == "pictures")
    #expect(throws: DatasetError.self) {
      try DatasetConfig.parse("datasets:\n  - json_path: x.jsonl\n    prompt_key: [a]\n")
    }
    #expect(throws: DatasetError.self) {
      try DatasetConfig.parse("datasets:\n  - json_path: x.jsonl\n    answer_key: a\n    solution_key: b\n")
    }
  }

  // MARK: Bad records

  @Test func badChatRecordsAreCountedWithTheirReason() throws {
    let url = try dataFile([
      #"{"prompt": [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}]}"#,
      #"{"prompt": [{"role": "user", "content": "<image><image>Q"}], "images": ["a.png"]}"#,
      #"{"prompt": [{"role": "robot", "content": "Q"}]}"#,
      #"{"prompt": [{"role": "user", "content": [{"type": "video"}]}]}"#,
      #"{"prompt": [{"role": "system", "content": "S"}]}"#,
      #"{"prompt": 42}"#,
      #"{"prompt": [{"role": "user", "content": "Q"}], "image": "missing.png"}"#,
      #"{"prompt": null, "image": "a.png", "solution": "x"}"#,
      #"{"prompt": [{"role": "user", "content": [{"text": "no type"}]}]}"#,
      #"{"prompt": [{"role": "user", "content": "Q"}], "solution": "fine"}"#,
    ])
    let loaded = try load(url)
    #expect(loaded.examples.count == 1)
    let reasons = loaded.summary.badRecords.map(\.reason)
    #expect(reasons == [
      .wrongType, .imageMarkerMismatch, .wrongType, .wrongType, .missingField, .wrongType, .imageNotFound, .missingField,
      .wrongType,
    ])
    #expect(loaded.summary.badRecords.map(\.location.index) == Array(0..<9))
    #expect(loaded.summary.badRecords.allSatisfy { $0.field == "prompt" || $0.field == "images" || $0.field == "image" })
    #expect(loaded.summary.badRecords[0].detail.contains("multi-turn prompts are not supported"))
    #expect(loaded.summary.badRecords[2].detail.contains("unknown role 'robot'"))
    #expect(loaded.summary.badRecords[3].detail.contains("part type 'video' is not supported"))
    #expect(loaded.summary.badRecords[7].field == "prompt")
    #expect(loaded.summary.badRecords[8].detail.contains("has no 'type'"))
  }

  @Test func explicitKindChecksTheValueShape() throws {
    let url = try dataFile([#"{"prompt": "plain text", "image": "a.png"}"#])
    let loaded = try DatasetLoader.load(path: url.path, kind: .chat)
    #expect(loaded.summary.badRecords.first?.reason == .wrongType)
    #expect(RecordKind(name: "easyr1") == .textPrompt && RecordKind(name: "conversational") == .chat)
  }

  // MARK: inspect

  @Test func inspectNamesTheColumnsAndSystemTurn() throws {
    let url = try dataFile([
      #"{"prompt": [{"role": "system", "content": "Sys."}, {"role": "user", "content": "<image>Q"}], "image": "a.png", "solution": "s"}"#,
    ])
    let lines = try DataTools.inspect(path: url.path)
    #expect(lines.contains("kinds: chat 1"))
    #expect(lines.contains("system: Sys."))
    #expect(lines.contains("    columns chat: prompt=prompt (chat messages), images=image, ground truth=solution: 1"))
  }
}
