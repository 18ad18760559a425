import Foundation
import Testing

@testable import Tokenizers

/// Random Unicode text: encoding never crashes and decoding gives back NFC(text).
@Suite struct FuzzTests {
  let tokenizer = TestFiles.tinyTokenizer

  /// Scalars drawn from ranges chosen to hit every regex class and the NFC normalizer.
  static let ranges: [ClosedRange<UInt32>] = [
    0x00...0x7F, 0x20...0x7E, 0x20...0x7E, 0x80...0x24F, 0x300...0x36F, 0x370...0x52F, 0x590...0x6FF,
    0x900...0x97F, 0xE00...0xE7F, 0x1100...0x11FF, 0x2000...0x206F, 0x2100...0x218F, 0x3000...0x30FF,
    0x4E00...0x4EFF, 0xAC00...0xAC7F, 0xE000...0xE00F, 0xFE00...0xFFFF, 0x1F300...0x1F6FF, 0x1D400...0x1D4FF,
    0x10FFF0...0x10FFFF,
  ]

  static func randomText(_ generator: inout SeededGenerator) -> String {
    var scalars = String.UnicodeScalarView()
    for _ in 0..<Int.random(in: 0...40, using: &generator) {
      let range = ranges.randomElement(using: &generator)!
      let value = UInt32.random(in: range, using: &generator)
      if let scalar = Unicode.Scalar(value) { scalars.append(scalar) }  // skips surrogates
    }
    return String(scalars)
  }

  @Test func randomTextRoundTripsToItsNFC() {
    var generator = SeededGenerator(state: 20_240_917)
    var failures: [String] = []
    for _ in 0..<3000 {
      let text = Self.randomText(&generator)
      let ids = tokenizer.encode(text)
      if ids.contains(where: { $0 < 0 || $0 >= tokenizer.vocabularySize }) { failures.append(describe(text)) }
      if tokenizer.decode(ids) != text.precomposedStringWithCanonicalMapping { failures.append(describe(text)) }
    }
    #expect(failures.isEmpty, "\(failures.count) failures, first: \(failures.prefix(3))")
  }

  @Test func randomTextWithSpecialTokensRoundTrips() {
    var generator = SeededGenerator(state: 99)
    let specials = ["<|im_start|>", "<|im_end|>", "<|image_pad|>", "<tool_call>"]
    for _ in 0..<500 {
      let parts = (0..<3).map { _ in Self.randomText(&generator) }
      let text = parts.joined(separator: specials.randomElement(using: &generator)!)
      let expected = parts.map(\.precomposedStringWithCanonicalMapping)
      let decoded = tokenizer.decode(tokenizer.encode(text))
      // Each segment between added tokens is normalized on its own.
      #expect(specials.contains { decoded == expected.joined(separator: $0) }, "\(describe(text))")
    }
  }

  @Test func randomBytesAsIdsNeverCrashAndStreamLikeDecode() {
    var generator = SeededGenerator(state: 7)
    for _ in 0..<500 {
      let ids = (0..<Int.random(in: 0...12, using: &generator)).map { _ in
        Int.random(in: -2...(tokenizer.vocabularySize + 2), using: &generator)
      }
      var decoder = tokenizer.makeIncrementalDecoder()
      let streamed = ids.map { decoder.feed($0) }.joined() + decoder.finish()
      #expect(streamed == tokenizer.decode(ids), "\(ids)")
    }
  }
}

/// Encoding speed, run by hand:
/// `TOKENIZERS_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter Throughput`.
/// Prints throughput; asserts only that the text round-trips (timing varies by machine).
@Suite struct ThroughputTests {
  /// About 1 MB of prompt-like text: English instructions, box lists, JSON answers, Chinese, code.
  static func promptLikeText() -> String {
    var generator = SeededGenerator(state: 1)
    let objects = ["cat", "dog", "red car", "traffic light", "person", "bicycle", "laptop", "cup"]
    var text = ""
    while text.utf8.count < 1_000_000 {
      let object = objects.randomElement(using: &generator)!
      let box = (0..<4).map { _ in Int.random(in: 0...1000, using: &generator) }
      text += "Find the \(object) in the image and output its bounding box. It's probably near the center.\n"
      text += "<think>The \(object) is at \(box); I'll report it.</think>\n"
      text += "<answer>{\"bbox_2d\": \(box), \"label\": \"\(object)\"}</answer>\n"
      text += "请找出图片中的\(Int.random(in: 1...9, using: &generator))只猫。    def f(x):\n\treturn x ** 2\n\n"
    }
    return text
  }

  /// About 1 MB made of the golden texts (many rare characters, few cache hits).
  static func goldenMixText() -> String {
    let sample = Golden.shared.cases.map(\.text).filter { !$0.contains("<|") && !$0.contains("<tool") }
    var text = ""
    var index = 0
    while text.utf8.count < 1_000_000 {
      text += sample[index % sample.count] + "\n"
      index += 1
    }
    return text
  }

  @Test(.enabled(if: ProcessInfo.processInfo.environment["TOKENIZERS_BENCH"] != nil))
  func encodeOneMegabyte() throws {
    for (name, text) in [("prompt-like", Self.promptLikeText()), ("golden mix", Self.goldenMixText())] {
      let tokenizer = try Tokenizer(directory: TestFiles.tokenizerDirectory)  // fresh, empty cache
      let clock = ContinuousClock()
      var ids: [Int] = []
      let cold = clock.measure { ids = tokenizer.encode(text) }
      let warm = clock.measure { ids = tokenizer.encode(text) }
      let megabytes = Double(text.utf8.count) / 1_000_000
      func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
      }
      print(String(format: "%@: %d bytes -> %d ids; cold cache %.3f s (%.1f MB/s), warm %.3f s (%.1f MB/s)",
        name, text.utf8.count, ids.count, seconds(cold), megabytes / seconds(cold), seconds(warm),
        megabytes / seconds(warm)))
      #expect(tokenizer.decode(ids) == text.precomposedStringWithCanonicalMapping)
    }
  }
}
