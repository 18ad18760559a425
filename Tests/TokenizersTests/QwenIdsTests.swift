import Foundation
import Testing

@testable import Tokenizers

/// The full-size stand-in made by `tools/make_tiny_tokenizer.py --qwen-ids --out DIR` (not committed,
/// several MB). Run with `TOKENIZERS_QWEN_IDS_DIR=DIR swift test --filter QwenIds`.
@Suite struct QwenIdsTests {
  static let directory = ProcessInfo.processInfo.environment["TOKENIZERS_QWEN_IDS_DIR"]

  @Test(.enabled(if: directory != nil))
  func paddedTokenizerPutsAddedTokensAtQwenIds() throws {
    let started = Date()
    let tokenizer = try Tokenizer(directory: URL(fileURLWithPath: try #require(Self.directory)))
    print("loaded the 151,665-entry tokenizer in \(Date().timeIntervalSince(started)) s")
    // Spec 7.1: Qwen2.5-VL's added tokens occupy 151643...151664.
    #expect(tokenizer.vocabularySize == 151_665)
    #expect(tokenizer.tokenToId("<|endoftext|>") == 151_643)
    #expect(tokenizer.tokenToId("<|im_start|>") == 151_644)
    #expect(tokenizer.tokenToId("<|im_end|>") == 151_645)
    #expect(tokenizer.tokenToId("<|vision_start|>") == 151_652)
    #expect(tokenizer.tokenToId("<|image_pad|>") == 151_655)
    #expect(tokenizer.tokenToId("<|video_pad|>") == 151_656)
    #expect(tokenizer.tokenToId("<tool_call>") == 151_657)
    #expect(tokenizer.tokenToId("<|file_sep|>") == 151_664)
    // Same trained merges, so every text encodes as with the tiny tokenizer, added ids shifted.
    let shift = 151_643 - 3000
    for item in Golden.shared.cases {
      #expect(tokenizer.encode(item.text) == item.ids.map { $0 >= 3000 ? $0 + shift : $0 }, "\(describe(item.text))")
    }
  }
}
