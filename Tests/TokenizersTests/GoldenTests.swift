import Foundation
import Testing

@testable import Tokenizers

/// Exact agreement with Hugging Face `tokenizers` on the committed golden fixture.
@Suite struct GoldenTests {
  let tokenizer = TestFiles.tinyTokenizer
  let golden = Golden.shared

  @Test func fixtureHasEnoughCases() {
    #expect(golden.cases.count >= 100)
    #expect(golden.decodeCases.count >= 50)
    #expect(golden.edge.cases.count >= 30)
  }

  @Test func encodeMatchesReferenceIds() {
    var failures: [String] = []
    for item in golden.cases where tokenizer.encode(item.text) != item.ids {
      failures.append("\(describe(item.text)): got \(tokenizer.encode(item.text)), expected \(item.ids)")
    }
    #expect(failures.isEmpty, "\(failures.count) mismatches, first: \(failures.prefix(5).joined(separator: "\n"))")
  }

  @Test func preTokenizerMatchesReferencePieces() {
    var failures: [String] = []
    for item in golden.cases {
      guard let expected = item.pieces else { continue }
      let normalized = Array(item.text.precomposedStringWithCanonicalMapping.utf8)
      let pieces = Qwen2PreTokenizer.split(normalized[...]).map { ByteLevel.encode(normalized[$0]) }
      if pieces != expected { failures.append("\(describe(item.text)): got \(pieces), expected \(expected)") }
    }
    #expect(failures.isEmpty, "\(failures.count) mismatches, first: \(failures.prefix(5).joined(separator: "\n"))")
  }

  @Test func decodeMatchesReferenceText() {
    for item in golden.cases {
      #expect(tokenizer.decode(item.ids, skipSpecialTokens: false) == item.decoded, "\(describe(item.text))")
      #expect(tokenizer.decode(item.ids, skipSpecialTokens: true) == item.decodedSkipSpecial, "\(describe(item.text))")
    }
  }

  @Test func decodeOfArbitraryIdsMatchesReference() {
    for item in golden.decodeCases {
      #expect(tokenizer.decode(item.ids, skipSpecialTokens: false) == item.decoded, "\(item.ids)")
      #expect(tokenizer.decode(item.ids, skipSpecialTokens: true) == item.decodedSkipSpecial, "\(item.ids)")
    }
  }

  @Test func addedTokenFlagsMatchReference() throws {
    let extra = try Golden.edgeAddedTokens()
    let edged = try TestFiles.editedTokenizer { json in
      json["added_tokens"] = (json["added_tokens"] as? [[String: Any]] ?? []) + extra
    }
    for item in golden.edge.cases {
      #expect(edged.encode(item.text) == item.ids, "\(describe(item.text))")
      #expect(edged.decode(item.ids, skipSpecialTokens: false) == item.decoded, "\(describe(item.text))")
      #expect(edged.decode(item.ids, skipSpecialTokens: true) == item.decodedSkipSpecial, "\(describe(item.text))")
    }
  }

  @Test func batchEncodeMatchesReferenceInOrder() {
    let items = Array(golden.cases.prefix(200))
    #expect(tokenizer.encodeBatch(items.map(\.text)) == items.map(\.ids))
  }

  @Test func streamingDecodeConcatenatesToReferenceText() {
    for item in golden.cases {
      var decoder = tokenizer.makeIncrementalDecoder(skipSpecialTokens: true)
      var text = ""
      for id in item.ids { text += decoder.feed(id) }
      text += decoder.finish()
      #expect(text == item.decodedSkipSpecial, "\(describe(item.text))")
    }
    for item in golden.decodeCases {
      var decoder = tokenizer.makeIncrementalDecoder()
      var text = item.ids.map { decoder.feed($0) }.joined()
      text += decoder.finish()
      #expect(text == item.decoded, "\(item.ids)")
    }
  }
}
