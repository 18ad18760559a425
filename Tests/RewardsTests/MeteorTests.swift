import Common
import Foundation
import Testing
@testable import Rewards

/// Against nltk 3.10.4 (tools/golden/rewards_meteor.py -> Fixtures/meteor_golden.json).
@Suite struct MeteorTests {
  static let wordNetPresent = FileManager.default.fileExists(atPath: WordNet.defaultPath + "/index.noun")

  @Test func porterStemsMatchNLTK() throws {
    let stems = try #require(Fixtures.json("meteor_golden.json")["stems"]?.objectValue)
    #expect(stems.count > 1000)
    var mismatches: [String] = []
    for (word, stem) in stems where PorterStemmer.stem(word) != stem.stringValue {
      mismatches.append("\(word): \(PorterStemmer.stem(word)) vs \(stem.stringValue ?? "")")
    }
    #expect(mismatches.isEmpty, "\(mismatches.prefix(20))")
  }

  @Test func meteorWithoutWordNetMatchesNLTK() throws {
    let cases = try #require(Fixtures.json("meteor_golden.json")["cases"]?.arrayValue)
    let meteor = Meteor(wordNet: nil)
    for item in cases {
      let hypothesis = try #require(item["hypothesis"]?.stringValue)
      let references = try #require(item["references"]?.arrayValue?.compactMap { $0.stringValue })
      let expected = try #require(item["meteor_no_wordnet"]?.doubleValue)
      #expect(near(meteor.score(hypothesis: hypothesis, references: references), expected, tolerance: 1e-12), "\(hypothesis)")
    }
  }

  @Test(.enabled(if: wordNetPresent)) func meteorWithWordNetMatchesNLTK() throws {
    let golden = try Fixtures.json("meteor_golden.json")
    let wordNet = try WordNet()
    for (word, names) in try #require(golden["synonyms"]?.objectValue) {
      #expect(wordNet.synonyms(of: word) == Set(names.arrayValue?.compactMap { $0.stringValue } ?? []), "\(word)")
    }
    let meteor = Meteor(wordNet: wordNet)
    for item in try #require(golden["cases"]?.arrayValue) {
      let hypothesis = try #require(item["hypothesis"]?.stringValue)
      let references = try #require(item["references"]?.arrayValue?.compactMap { $0.stringValue })
      let expected = try #require(item["meteor_wordnet"]?.doubleValue)
      #expect(near(meteor.score(hypothesis: hypothesis, references: references), expected, tolerance: 1e-12), "\(hypothesis)")
    }
  }

  @Test func meteorRewardReadsCaptions() async throws {
    // Hand-computed: hypothesis "a cat" vs reference "a cat sat": P = 1, R = 2/3, one chunk.
    // Fmean = (2/3) / (0.9 + 0.1 * 2/3) = 0.6897; penalty = 0.5 * (1/2)^3 = 0.0625.
    let expected = (1 - 0.0625) * (2.0 / 3.0) / (0.9 + 0.1 * 2.0 / 3.0)
    let value = try await score("meteor", "<answer>A cat</answer>", fields: ["captions": .array([.string("a cat sat"), .string("dog")])],
                                parameters: ["wordnet": .bool(false)])
    #expect(near(value, expected, tolerance: 1e-12))
    #expect(try await score("meteor", "a cat", parameters: ["wordnet": .bool(false)]) == nil)
    #expect(try await score("meteor", "", fields: ["caption": .string("a cat")], parameters: ["wordnet": .bool(false)]) == 0)
  }
}
