import Foundation
import Testing

@testable import Tokenizers

/// Paths and loaders shared by the tests. Fixtures are made by tools/golden/tokenizer_golden.py
/// (Hugging Face `tokenizers`); the tokenizer by tools/make_tiny_tokenizer.py.
enum TestFiles {
  static let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  static let repositoryRoot = testsDirectory.deletingLastPathComponent().deletingLastPathComponent()
  static let tokenizerDirectory = repositoryRoot.appendingPathComponent("assets/tokenizer")
  static let goldenFile = testsDirectory.appendingPathComponent("Fixtures/tokenizer_golden.json")

  static let tinyTokenizer: Tokenizer = {
    do {
      return try Tokenizer(directory: tokenizerDirectory)
    } catch {
      fatalError("cannot load \(tokenizerDirectory.path): \(error)")
    }
  }()

  static func tokenizerJSON() throws -> [String: Any] {
    let data = try Data(contentsOf: tokenizerDirectory.appendingPathComponent("tokenizer.json"))
    return try #require(JSONSerialization.jsonObject(with: data) as? [String: Any])
  }

  /// The tiny tokenizer with its JSON edited by `edit` (to test other layouts and bad files).
  static func editedTokenizer(_ edit: (inout [String: Any]) throws -> Void) throws -> Tokenizer {
    var json = try tokenizerJSON()
    try edit(&json)
    return try Tokenizer(tokenizerJSON: try JSONSerialization.data(withJSONObject: json), source: "edited.json")
  }

  static func loadError(_ edit: (inout [String: Any]) throws -> Void) throws -> TokenizerError? {
    do {
      _ = try editedTokenizer(edit)
      return nil
    } catch let error as TokenizerError {
      return error
    }
  }
}

/// The golden fixture.
struct Golden: Decodable {
  struct Case: Decodable {
    var text: String
    var ids: [Int]
    var decoded: String
    var decodedSkipSpecial: String
    var pieces: [String]?

    enum CodingKeys: String, CodingKey {
      case text, ids, decoded, decodedSkipSpecial = "decoded_skip_special", pieces
    }
  }

  struct DecodeCase: Decodable {
    var ids: [Int]
    var decoded: String
    var decodedSkipSpecial: String

    enum CodingKeys: String, CodingKey {
      case ids, decoded, decodedSkipSpecial = "decoded_skip_special"
    }
  }

  struct Edge: Decodable {
    var cases: [Case]
  }

  var cases: [Case]
  var decodeCases: [DecodeCase]
  var edge: Edge

  enum CodingKeys: String, CodingKey {
    case cases, decodeCases = "decode_cases", edge
  }

  static let shared: Golden = {
    do {
      return try JSONDecoder().decode(Golden.self, from: Data(contentsOf: TestFiles.goldenFile))
    } catch {
      fatalError("cannot load \(TestFiles.goldenFile.path): \(error)")
    }
  }()

  /// The edge set's extra added tokens, as raw JSON objects to append to `added_tokens`.
  static func edgeAddedTokens() throws -> [[String: Any]] {
    let data = try Data(contentsOf: TestFiles.goldenFile)
    let root = try #require(JSONSerialization.jsonObject(with: data) as? [String: Any])
    let edge = try #require(root["edge"] as? [String: Any])
    return try #require(edge["added_tokens"] as? [[String: Any]])
  }
}

/// A small deterministic generator (SplitMix64) so fuzz failures reproduce.
struct SeededGenerator: RandomNumberGenerator {
  var state: UInt64

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

func describe(_ text: String) -> String {
  text.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : String(format: "\\u{%X}", $0.value) }.joined()
}
