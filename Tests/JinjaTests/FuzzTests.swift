import Foundation
import Testing

@testable import Jinja

/// Random and mutated templates must parse or fail with a JinjaError, and render or fail the same
/// way: never crash, never hang.
@Suite struct FuzzTests {
  /// SplitMix64: a small seeded generator, so failures reproduce.
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

  static let fragments = [
    "{%", "%}", "{{", "}}", "{#", "#}", "-", "+", "if", "elif", "else", "endif", "for", "in", "endfor", "set",
    "=", "ns.x", "namespace(x=1)", "macro", "endmacro", "m(", ")", "(", "[", "]", "{", "}", ",", ":", "::-1",
    "'s'", "\"q\"", "1", "2.5", "x", "messages", "loop.index", "|", "tojson", "length", "trim", "is", "not",
    "defined", "string", "and", "or", "~", "*", "**", "//", "%", ".", "items()", "strip()", " ", "\n", "raw",
    "endraw", "break", "continue", "none", "true", "raise_exception('e')", "'a' if x else 'b'", "\\",
  ]

  static let context: [String: JinjaValue] = [
    "x": 3, "messages": [.object([("role", "user"), ("content", "hi")]), .object([("role", "assistant"), ("content", ["a"])])],
    "add_generation_prompt": true,
  ]

  private func exercise(_ source: String) {
    do {
      let template = try JinjaTemplate(source, name: "fuzz")
      _ = try? template.render(Self.context)
    } catch {
      #expect(!error.description.isEmpty)
    }
  }

  @Test func randomFragmentSoup() {
    var rng = SeededGenerator(state: 20_240_607)
    for _ in 0..<3000 {
      let count = Int.random(in: 1...24, using: &rng)
      exercise((0..<count).map { _ in Self.fragments.randomElement(using: &rng)! }.joined())
    }
  }

  @Test func mutatedRealTemplates() throws {
    let names = ["qwen2_vl_instruct", "qwen2_5_instruct", "qwen3", "generic_loops", "generic_filters", "generic_whitespace"]
    let sources = try names.map { try Array(GoldenFixture.templateSource($0).unicodeScalars) }
    var rng = SeededGenerator(state: 7)
    for _ in 0..<1500 {
      var scalars = sources.randomElement(using: &rng)!
      for _ in 0..<Int.random(in: 1...6, using: &rng) where !scalars.isEmpty {
        let at = Int.random(in: 0..<scalars.count, using: &rng)
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: scalars.remove(at: at)
        case 1: scalars.insert(contentsOf: Self.fragments.randomElement(using: &rng)!.unicodeScalars, at: at)
        case 2: scalars.removeSubrange(at..<min(scalars.count, at + Int.random(in: 1...30, using: &rng)))
        default:
          let other = Int.random(in: 0..<scalars.count, using: &rng)
          scalars.swapAt(at, other)
        }
      }
      exercise(String(String.UnicodeScalarView(scalars)))
    }
  }

  @Test func randomBytesAndJSON() {
    var rng = SeededGenerator(state: 99)
    let alphabet = Array("{}%#-+'\"\\ \nab1.|()[]:,=~<>!".unicodeScalars)
    for _ in 0..<1500 {
      let count = Int.random(in: 0...40, using: &rng)
      let text = String(String.UnicodeScalarView((0..<count).map { _ in alphabet.randomElement(using: &rng)! }))
      exercise(text)
      _ = try? JinjaValue(json: text)
    }
  }
}
