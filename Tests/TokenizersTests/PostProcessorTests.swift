import Foundation
import Testing

@testable import Tokenizers

/// One file of Fixtures/PostProcessors (tools/golden/tokenizer_postprocessors.py, Hugging Face
/// `tokenizers`): a `post_processor` to put into the stand-in tokenizer, and the reference ids.
struct PostProcessorGolden: Decodable {
  struct Case: Decodable {
    var text: String
    var ids: [Int]
    var idsWithoutSpecialTokens: [Int]

    enum CodingKeys: String, CodingKey {
      case text, ids, idsWithoutSpecialTokens = "ids_without_special_tokens"
    }
  }

  struct Refused: Decodable {
    var description: String
    var tokenizers: String
  }

  var cases: [Case]?
  var refused: [Refused]?

  static let directory = TestFiles.testsDirectory.appendingPathComponent("Fixtures/PostProcessors")
  static let names = ["template", "template_multi_id", "bert", "roberta", "byte_level", "sequence", "sequence_chained"]

  static func load(_ name: String) throws -> (golden: PostProcessorGolden, postProcessor: [String: Any]) {
    let data = try Data(contentsOf: directory.appendingPathComponent("\(name).json"))
    let root = try #require(JSONSerialization.jsonObject(with: data) as? [String: Any])
    let postProcessor = try #require(root["post_processor"] as? [String: Any])
    return (try JSONDecoder().decode(PostProcessorGolden.self, from: data), postProcessor)
  }

  /// The refused layouts, by description, as raw post_processor objects.
  static func loadRefused() throws -> [(refused: Refused, postProcessor: [String: Any])] {
    let data = try Data(contentsOf: directory.appendingPathComponent("refused.json"))
    let root = try #require(JSONSerialization.jsonObject(with: data) as? [String: Any])
    let objects = try #require(root["refused"] as? [[String: Any]])
    let decoded = try #require(try JSONDecoder().decode(PostProcessorGolden.self, from: data).refused)
    return try zip(decoded, objects).map { ($0, try #require($1["post_processor"] as? [String: Any])) }
  }

  /// Every `type` in a post_processor object, nested ones included.
  static func types(in object: Any) -> [String] {
    guard let dictionary = object as? [String: Any] else { return [] }
    let nested = (dictionary["processors"] as? [Any] ?? []).flatMap(types(in:))
    return (dictionary["type"] as? String).map { [$0] + nested } ?? nested
  }
}

func tokenizer(withPostProcessor postProcessor: [String: Any]) throws -> Tokenizer {
  try TestFiles.editedTokenizer { $0["post_processor"] = postProcessor }
}

func loadError(withPostProcessor postProcessor: [String: Any]) throws -> TokenizerError? {
  try TestFiles.loadError { $0["post_processor"] = postProcessor }
}

@Suite struct PostProcessorGoldenTests {
  @Test func fixturesCoverEveryKind() throws {
    var types: Set<String> = []
    for name in PostProcessorGolden.names {
      let (golden, postProcessor) = try PostProcessorGolden.load(name)
      types.formUnion(PostProcessorGolden.types(in: postProcessor))
      let cases = try #require(golden.cases)
      #expect(cases.count >= 5, "\(name)")
      // Every fixture but ByteLevel's adds tokens on some text, so a no-op implementation fails.
      #expect(cases.contains { $0.ids != $0.idsWithoutSpecialTokens } == (name != "byte_level"), "\(name)")
    }
    #expect(types == ["TemplateProcessing", "BertProcessing", "RobertaProcessing", "ByteLevel", "Sequence"])
  }

  @Test(arguments: PostProcessorGolden.names)
  func encodeMatchesReference(name: String) throws {
    let (golden, postProcessor) = try PostProcessorGolden.load(name)
    let edited = try tokenizer(withPostProcessor: postProcessor)
    for item in try #require(golden.cases) {
      #expect(edited.encode(item.text) == item.ids, "\(name): \(describe(item.text))")
      #expect(edited.encode(item.text, addSpecialTokens: true) == item.ids, "\(name): \(describe(item.text))")
      #expect(edited.encode(item.text, addSpecialTokens: false) == item.idsWithoutSpecialTokens,
              "\(name): \(describe(item.text))")
    }
  }

  @Test func withoutSpecialTokensEveryFixtureGivesTheModelIds() throws {
    // The reference's ids without special tokens are the plain model ids, except where a template
    // repeats a sequence: a check that the fixtures were made from the current stand-in tokenizer.
    for name in PostProcessorGolden.names where name != "template_multi_id" {
      for item in try #require(try PostProcessorGolden.load(name).golden.cases) {
        #expect(TestFiles.tinyTokenizer.encode(item.text) == item.idsWithoutSpecialTokens, "\(name)")
      }
    }
  }

  @Test func batchEncodePassesTheFlag() throws {
    let (golden, postProcessor) = try PostProcessorGolden.load("sequence_chained")
    let edited = try tokenizer(withPostProcessor: postProcessor)
    let cases = try #require(golden.cases)
    #expect(edited.encodeBatch(cases.map(\.text)) == cases.map(\.ids))
    #expect(edited.encodeBatch(cases.map(\.text), addSpecialTokens: false) == cases.map(\.idsWithoutSpecialTokens))
  }

  @Test func qwensByteLevelPostProcessorLeavesIdsAlone() {
    // The stand-in tokenizer has Qwen's layout (a ByteLevel post_processor): the flag changes nothing.
    let qwenLike = TestFiles.tinyTokenizer
    #expect(qwenLike.postProcessor == nil)
    for item in Golden.shared.cases.prefix(100) {
      #expect(qwenLike.encode(item.text, addSpecialTokens: true) == item.ids, "\(describe(item.text))")
      #expect(qwenLike.encode(item.text, addSpecialTokens: false) == item.ids, "\(describe(item.text))")
    }
  }
}

@Suite struct PostProcessorRefusalTests {
  /// Where tokenizers refuses the file or panics on encode, the field our error names.
  static let expectedFields = [
    "unknown type": "post_processor.type",
    "sequence B in the single template": "post_processor.single[0]",
    "special token missing from special_tokens": "post_processor.single[0]",
    "a template given three parts": "post_processor.processors[1]",
  ]

  @Test func refusedWhereTokenizersRefusesOrPanics() throws {
    let refused = try PostProcessorGolden.loadRefused()
    #expect(Set(refused.map(\.refused.description)) == Set(Self.expectedFields.keys))
    for (item, postProcessor) in refused {
      let field = try #require(Self.expectedFields[item.description])
      let error = try #require(try loadError(withPostProcessor: postProcessor), "\(item.description) loaded")
      #expect(error.description.contains("field \(field):"), "\(item.description): \(error)")
    }
  }

  @Test func unknownTypeNamesTheTypeField() throws {
    let top = try loadError(withPostProcessor: ["type": "Lowercase"])
    #expect(top == .unsupported(
      source: "edited.json", field: "post_processor.type",
      value: "Lowercase (known: TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence)"))
    let nested = try loadError(withPostProcessor: [
      "type": "Sequence", "processors": [["type": "ByteLevel"], ["type": "BertProcesing", "sep": ["a", 1], "cls": ["b", 2]]],
    ])
    #expect(nested?.description.contains("field post_processor.processors[1].type: unsupported value BertProcesing") == true)
  }

  @Test func malformedFieldsAreNamed() throws {
    let missingCls = try loadError(withPostProcessor: ["type": "BertProcessing", "sep": ["[SEP]", 102]])
    #expect(missingCls == .invalidField(
      source: "edited.json", field: "post_processor.cls", reason: "missing (required by BertProcessing)"))
    let negativeId = try loadError(withPostProcessor: ["type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", -1]])
    #expect(negativeId?.description.contains("field post_processor.cls:") == true)
    let threeElements = try loadError(withPostProcessor: ["type": "BertProcessing", "sep": ["[SEP]", 102, 3], "cls": ["[CLS]", 101]])
    #expect(threeElements?.description.contains("post_processor.sep") == true)
    let noPair = try loadError(withPostProcessor: [
      "type": "TemplateProcessing", "single": [["Sequence": ["id": "A", "type_id": 0]]], "special_tokens": [:],
    ])
    #expect(noPair?.description.contains("field post_processor.pair:") == true)
    let sequenceC = try loadError(withPostProcessor: [
      "type": "TemplateProcessing", "single": [["Sequence": ["id": "C", "type_id": 0]]], "pair": [], "special_tokens": [:],
    ])
    #expect(sequenceC?.description.contains("field post_processor.single[0]:") == true)
  }

  @Test func unusedPairTemplateIsNotChecked() throws {
    // tokenizers loads a pair template naming an unknown token and only fails if it is applied;
    // with single sequences it never is.
    let edited = try tokenizer(withPostProcessor: [
      "type": "TemplateProcessing",
      "single": [["SpecialToken": ["id": "<s>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
      "pair": [["SpecialToken": ["id": "<missing>", "type_id": 0]], ["Sequence": ["id": "B", "type_id": 1]]],
      "special_tokens": ["<s>": ["id": "<s>", "ids": [3000], "tokens": ["<|endoftext|>"]]],
    ])
    #expect(edited.encode("Hello world") == [3000] + TestFiles.tinyTokenizer.encode("Hello world"))
  }
}
