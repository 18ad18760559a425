import Foundation
import Testing

@testable import Tokenizers

/// Hand-computed expectations for the pieces: byte table, regex, merge loop, API, errors.
@Suite struct ByteLevelTests {
  @Test func knownCharacters() {
    // GPT-2 table: printable bytes map to themselves; 0...32 become U+0100...U+0120, etc.
    #expect(ByteLevel.scalarForByte[0x20] == "\u{120}")  // Ġ
    #expect(ByteLevel.scalarForByte[0x0A] == "\u{10A}")  // Ċ
    #expect(ByteLevel.scalarForByte[0x09] == "\u{109}")  // ĉ
    #expect(ByteLevel.scalarForByte[0x0D] == "\u{10D}")  // č
    #expect(ByteLevel.scalarForByte[0x00] == "\u{100}")
    #expect(ByteLevel.scalarForByte[0x7F] == "\u{121}")
    #expect(ByteLevel.scalarForByte[0xA0] == "\u{142}")
    #expect(ByteLevel.scalarForByte[0xAD] == "\u{143}")
    #expect(ByteLevel.scalarForByte[Int(UInt8(ascii: "A"))] == "A")
    #expect(ByteLevel.scalarForByte[0xE4] == "\u{E4}")
  }

  @Test func tableIsABijection() {
    #expect(Set(ByteLevel.scalarForByte).count == 256)
    for byte in 0..<256 {
      #expect(ByteLevel.byteForScalar[Int(ByteLevel.scalarForByte[byte].value)] == Int16(byte))
    }
  }

  @Test func decodeRuleForTokensOutsideTheTable() {
    #expect(ByteLevel.decode(token: "\u{120}hello") == Array(" hello".utf8))
    // '✓' is not a byte-level character, so the whole token is taken as its own UTF-8.
    #expect(ByteLevel.decode(token: "\u{120}\u{2713}") == Array("\u{120}\u{2713}".utf8))
    #expect(ByteLevel.encode(Array("a b\n".utf8)) == "a\u{120}b\u{10A}")
  }
}

@Suite struct PreTokenizerTests {
  func pieces(_ text: String) -> [String] {
    let bytes = Array(text.utf8)
    return Qwen2PreTokenizer.split(bytes[...]).map { String(decoding: bytes[$0], as: UTF8.self) }
  }

  @Test func spaceRunsLeaveTheirLastSpaceToTheNextWord() {
    #expect(pieces("a   b") == ["a", "  ", " b"])
    #expect(pieces("a b") == ["a", " b"])
    #expect(pieces("end   ") == ["end", "   "])
    #expect(pieces("x  1") == ["x", " ", " ", "1"])
  }

  @Test func digitsAreSinglePieces() {
    #expect(pieces("2024") == ["2", "0", "2", "4"])
    #expect(pieces("[12, 3]") == ["[", "1", "2", ",", " ", "3", "]"])
  }

  @Test func contractionsAreCaseInsensitive() {
    #expect(pieces("I'm") == ["I", "'m"])
    #expect(pieces("WE'LL") == ["WE", "'LL"])
    #expect(pieces("they'Re") == ["they", "'Re"])
    #expect(pieces("'sa") == ["'s", "a"])
    #expect(pieces("'x") == ["'x"])
  }

  @Test func lineBreaksAndSymbols() {
    #expect(pieces("a\n\nb") == ["a", "\n\n", "b"])
    #expect(pieces("a \n b") == ["a", " \n", " b"])
    #expect(pieces("a!!\n\nb") == ["a", "!!\n\n", "b"])
    #expect(pieces(" !?") == [" !?"])
    #expect(pieces("\tword") == ["\tword"])
    #expect(pieces("\nword") == ["\n", "word"])
  }
}

@Suite struct BPEModelTests {
  /// A hand-made byte-level tokenizer: vocabulary a, b, aa, ab, aab with ranks a+a < a+b < aa+b.
  func handMade(merges: Any, ignoreMerges: Bool = false, extraVocab: [String: Int] = [:]) throws -> Tokenizer {
    var json = try TestFiles.tokenizerJSON()
    var vocab: [String: Int] = ["a": 0, "b": 1, "aa": 2, "ab": 3, "aab": 4]
    vocab.merge(extraVocab) { $1 }
    json["model"] = [
      "type": "BPE", "vocab": vocab, "merges": merges, "ignore_merges": ignoreMerges,
      "dropout": NSNull(), "unk_token": NSNull(),
    ] as [String: Any]
    json["added_tokens"] = [[String: Any]]()
    return try Tokenizer(tokenizerJSON: try JSONSerialization.data(withJSONObject: json), source: "hand.json")
  }

  @Test func lowestRankMergesFirstLeftToRight() throws {
    let tokenizer = try handMade(merges: ["a a", "a b", "aa b"])
    #expect(tokenizer.encode("aaa") == [2, 0])  // (aa)(a): non-overlapping, leftmost first
    #expect(tokenizer.encode("aaaa") == [2, 2])
    #expect(tokenizer.encode("aab") == [4])  // a a b -> aa b -> aab
    #expect(tokenizer.encode("abab") == [3, 3])
    // Bytes missing from the vocabulary are dropped when there is no unk token (HF behaviour).
    #expect(tokenizer.encode("xab") == [3])
  }

  @Test func bothMergeLayoutsGiveTheSameIds() throws {
    let strings = try handMade(merges: ["a a", "a b", "aa b"])
    let pairs = try handMade(merges: [["a", "a"], ["a", "b"], ["aa", "b"]])
    for text in ["aaa", "aab", "abab", "aaab"] { #expect(strings.encode(text) == pairs.encode(text)) }
  }

  @Test func ignoreMergesTakesWholeVocabularyWords() throws {
    // "ba" is in the vocabulary but no merge builds it.
    let plain = try handMade(merges: ["a a"], extraVocab: ["ba": 5])
    let ignoring = try handMade(merges: ["a a"], ignoreMerges: true, extraVocab: ["ba": 5])
    #expect(plain.encode("ba") == [1, 0])
    #expect(ignoring.encode("ba") == [5])
  }

  @Test func badMergesNameTheField() throws {
    #expect(throws: TokenizerError.self) { try handMade(merges: ["a c"]) }
    do {
      _ = try handMade(merges: ["a a", "a b c"])
      Issue.record("expected an error")
    } catch let error as TokenizerError {
      #expect(error.description.contains("model.merges[1]"))
    }
  }
}

@Suite struct TokenizerAPITests {
  let tokenizer = TestFiles.tinyTokenizer

  @Test func qwenAddedTokensFollowTheVocabulary() {
    // 3000 trained tokens, then Qwen2.5-VL's 22 added tokens in Qwen's order (docs/qwen-vl.md 7.1).
    #expect(tokenizer.vocabularySize == 3022)
    #expect(tokenizer.tokenToId("<|endoftext|>") == 3000)
    #expect(tokenizer.tokenToId("<|im_start|>") == 3001)
    #expect(tokenizer.tokenToId("<|im_end|>") == 3002)
    #expect(tokenizer.tokenToId("<|image_pad|>") == 3012)
    #expect(tokenizer.tokenToId("<|file_sep|>") == 3021)
    #expect(tokenizer.idToToken(3012) == "<|image_pad|>")
    #expect(tokenizer.specialTokens.count == 14)
    #expect(tokenizer.specialTokens["<tool_call>"] == nil)
    #expect(tokenizer.addedTokens.count == 22)
    #expect(tokenizer.idToToken(3022) == nil)
    #expect(tokenizer.idToToken(-1) == nil)
  }

  @Test func regularTokensUseByteLevelStrings() {
    #expect(tokenizer.tokenToId("\u{120}") == 220)  // " " as in every GPT-2-style vocabulary
    #expect(tokenizer.idToToken(220) == "\u{120}")
    #expect(tokenizer.tokenToId("not a token") == nil)
  }

  @Test func specialTokensInTextBecomeSingleIds() {
    #expect(tokenizer.encode("<|im_start|><|im_end|>") == [3001, 3002])
    #expect(tokenizer.encode("") == [])
    #expect(tokenizer.decode([3001, 3002, 3014], skipSpecialTokens: true) == "<tool_call>")
    #expect(tokenizer.decode([3001, 99_999, -5, 3002]) == "<|im_start|><|im_end|>")
  }

  @Test func streamingWaitsForCompleteCharacters() throws {
    // One token per byte of a 4-byte character.
    let ids = try "\u{1F9FF}".utf8.map { byte in
      try #require(tokenizer.tokenToId(String(Character(ByteLevel.scalarForByte[Int(byte)]))))
    }
    var decoder = tokenizer.makeIncrementalDecoder()
    #expect(ids.map { decoder.feed($0) } == ["", "", "", "\u{1F9FF}"])
    #expect(decoder.finish() == "")
    // An unfinished character at the end is flushed as U+FFFD.
    #expect(decoder.feed(Array(ids.prefix(2))) == "")
    #expect(decoder.finish() == "\u{FFFD}")
  }

  @Test func incompleteSuffixDetection() {
    #expect(UTF8Scanning.incompleteSuffixLength([0x41, 0xE4]) == 1)
    #expect(UTF8Scanning.incompleteSuffixLength([0xE4, 0xB8]) == 2)
    #expect(UTF8Scanning.incompleteSuffixLength([0xE4, 0xB8, 0xAD]) == 0)
    #expect(UTF8Scanning.incompleteSuffixLength([0xED, 0xA0]) == 0)  // would be a surrogate: never valid
    #expect(UTF8Scanning.incompleteSuffixLength([0xF0, 0x9F, 0xA7]) == 3)
    #expect(UTF8Scanning.incompleteSuffixLength([0xC0]) == 0)
    #expect(UTF8Scanning.incompleteSuffixLength([0x80, 0x80, 0x80]) == 0)
  }

  @Test func tokenizeCommandPrintsIdsAndDecodes() throws {
    let directory = TestFiles.tokenizerDirectory
    let item = try #require(Golden.shared.cases.first { $0.text.contains("<|im_start|>system") })
    let printed = try TokenizeCommand.run(tokenizerDirectory: directory, input: item.text, decode: false)
    #expect(printed == "[" + item.ids.map(String.init).joined(separator: ", ") + "]")
    #expect(try TokenizeCommand.run(tokenizerDirectory: directory, input: printed, decode: true) == item.decoded)
    #expect(try TokenizeCommand.run(tokenizerDirectory: directory, input: "3001 3002", decode: true)
      == "<|im_start|><|im_end|>")
    #expect(throws: TokenizerError.self) {
      try TokenizeCommand.run(tokenizerDirectory: directory, input: "12 abc", decode: true)
    }
    #expect(throws: TokenizerError.self) {
      try TokenizeCommand.run(tokenizerDirectory: directory, input: "3022", decode: true)
    }
  }
}

@Suite struct LoadingErrorTests {
  @Test func missingDirectoryNamesThePath() {
    let directory = URL(fileURLWithPath: "/nonexistent/tokenizer-dir")
    do {
      _ = try Tokenizer(directory: directory)
      Issue.record("expected an error")
    } catch let error as TokenizerError {
      #expect(error.description.contains("/nonexistent/tokenizer-dir/tokenizer.json"))
    } catch {
      Issue.record("unexpected error \(error)")
    }
  }

  @Test func malformedJSONIsReportedWithItsSource() {
    #expect(throws: TokenizerError.self) { try Tokenizer(tokenizerJSON: Data("{\"model\": 3".utf8), source: "x.json") }
    do {
      _ = try Tokenizer(tokenizerJSON: Data("{\"added_tokens\": []}".utf8), source: "x.json")
    } catch let error as TokenizerError {
      #expect(error.description.contains("x.json"))
      #expect(error.description.contains("model"))
    } catch {
      Issue.record("unexpected error \(error)")
    }
  }

  @Test func unsupportedComponentsAreRefusedByField() throws {
    let otherRegex = try TestFiles.loadError { json in
      var pre = json["pre_tokenizer"] as? [String: Any] ?? [:]
      var parts = pre["pretokenizers"] as? [[String: Any]] ?? []
      parts[0]["pattern"] = ["Regex": "\\s+"]
      pre["pretokenizers"] = parts
      json["pre_tokenizer"] = pre
    }
    #expect(otherRegex?.description.contains("pre_tokenizer.pretokenizers[0].pattern") == true)
    let lowercase = try TestFiles.loadError { $0["normalizer"] = ["type": "Lowercase"] }
    #expect(lowercase == .unsupported(source: "edited.json", field: "normalizer.type", value: "Lowercase"))
    let template = try TestFiles.loadError { $0["post_processor"] = ["type": "TemplateProcessing"] }
    #expect(template?.description.contains("post_processor.special_tokens") == true)
    let fallback = try TestFiles.loadError { json in
      var model = json["model"] as? [String: Any] ?? [:]
      model["byte_fallback"] = true
      json["model"] = model
    }
    #expect(fallback == .unsupported(source: "edited.json", field: "model.byte_fallback", value: "true"))
    let hugeId = try TestFiles.loadError { json in
      var added = json["added_tokens"] as? [[String: Any]] ?? []
      added[0]["id"] = 1 << 40
      json["added_tokens"] = added
    }
    #expect(hugeId?.description.contains("added_tokens[0].id") == true)
    let negativeVocabId = try TestFiles.loadError { json in
      var model = json["model"] as? [String: Any] ?? [:]
      var vocab = model["vocab"] as? [String: Any] ?? [:]
      vocab["\u{120}the"] = -3
      model["vocab"] = vocab
      json["model"] = model
    }
    #expect(negativeVocabId?.description.contains("model.vocab") == true)
    let noNormalizer = try TestFiles.editedTokenizer { $0["normalizer"] = NSNull() }
    #expect(noNormalizer.encode("e\u{301}") != TestFiles.tinyTokenizer.encode("e\u{301}"))
  }
}
