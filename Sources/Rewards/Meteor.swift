// METEOR with nltk's meteor_score semantics (exact, Porter stem, WordNet synonym stages).
import Common
import Foundation

public struct Meteor: Sendable {
  public var alpha = 0.9
  public var beta = 3.0
  public var gamma = 0.5
  /// nil: the synonym stage is skipped.
  public var wordNet: WordNet?

  public init(alpha: Double = 0.9, beta: Double = 3.0, gamma: Double = 0.5, wordNet: WordNet?) {
    self.alpha = alpha
    self.beta = beta
    self.gamma = gamma
    self.wordNet = wordNet
  }

  /// Tokens longer than this many characters skip the stem and synonym stages (no English word is
  /// that long; it keeps a runaway "word" from costing per-character work in every stage).
  public static let maxStemmedTokenLength = 64

  /// Lower-cased whitespace tokens.
  public static func tokens(_ text: String) -> [String] {
    text.lowercased().split(whereSeparator: \.isWhitespace).map(String.init)
  }

  /// At most `limit` lower-cased whitespace tokens, and whether the text has more.
  static func tokens(_ text: String, limit: Int) -> (tokens: [String], truncated: Bool) {
    var result: [String] = []
    for piece in text.split(whereSeparator: \.isWhitespace) {
      if result.count == limit { return (result, true) }
      result.append(piece.lowercased())
    }
    return (result, false)
  }

  /// The best score over the references. A hypothesis longer than `RewardLimits.meteorTokens`
  /// tokens scores 0; references are cut to that many tokens.
  public func score(hypothesis: String, references: [String]) -> Double {
    let (hypothesisTokens, tooLong) = Self.tokens(hypothesis, limit: RewardLimits.meteorTokens)
    guard !tooLong else { return 0 }
    return references.map {
      single(hypothesis: hypothesisTokens, reference: Self.tokens($0, limit: RewardLimits.meteorTokens).tokens)
    }.max() ?? 0
  }

  static func stem(_ word: String) -> String {
    word.count > maxStemmedTokenLength ? word : PorterStemmer.stem(word)
  }

  /// nltk's `single_meteor_score` on token lists.
  public func single(hypothesis: [String], reference: [String]) -> Double {
    var hyp = Array(hypothesis.enumerated()).map { ($0.offset, $0.element) }
    var ref = Array(reference.enumerated()).map { ($0.offset, $0.element) }
    var matches = Self.matchEqual(&hyp, &ref)
    hyp = hyp.map { ($0.0, Self.stem($0.1)) }
    ref = ref.map { ($0.0, Self.stem($0.1)) }
    matches += Self.matchEqual(&hyp, &ref)
    if let wordNet { matches += Self.matchSynonyms(&hyp, &ref, wordNet: wordNet) }
    matches.sort { $0.0 < $1.0 }
    guard !matches.isEmpty, !hypothesis.isEmpty, !reference.isEmpty else { return 0 }
    let count = Double(matches.count)
    let precision = count / Double(hypothesis.count)
    let recall = count / Double(reference.count)
    let fmean = precision * recall / (alpha * precision + (1 - alpha) * recall)
    let fragmentation = Double(Self.chunks(matches)) / count
    return (1 - gamma * pow(fragmentation, beta)) * fmean
  }

  typealias Enumerated = [(Int, String)]

  /// From the last hypothesis word backwards, each takes the highest remaining reference position
  /// holding the same word.
  static func matchEqual(_ hyp: inout Enumerated, _ ref: inout Enumerated) -> [(Int, Int)] {
    matchBy(&hyp, &ref) { word in [word] }
  }

  static func matchSynonyms(_ hyp: inout Enumerated, _ ref: inout Enumerated, wordNet: WordNet) -> [(Int, Int)] {
    matchBy(&hyp, &ref) { word in
      guard word.count <= maxStemmedTokenLength else { return [word] }
      return wordNet.synonyms(of: word).filter { !$0.contains("_") }.union([word])
    }
  }

  /// The highest remaining reference position among the candidate words wins (nltk).
  static func matchBy(_ hyp: inout Enumerated, _ ref: inout Enumerated, candidates: (String) -> Set<String>) -> [(Int, Int)] {
    var positions: [String: [Int]] = [:]
    for (j, pair) in ref.enumerated() { positions[pair.1, default: []].append(j) }
    var matched: [(Int, Int)] = []
    var usedHyp = Set<Int>(), usedRef = Set<Int>()
    for i in hyp.indices.reversed() {
      var best = -1
      var bestWord: String? = nil
      for word in candidates(hyp[i].1) {
        if let last = positions[word]?.last, last > best {
          best = last
          bestWord = word
        }
      }
      guard let bestWord else { continue }
      positions[bestWord]?.removeLast()
      usedHyp.insert(i)
      usedRef.insert(best)
      matched.append((hyp[i].0, ref[best].0))
    }
    hyp = hyp.enumerated().filter { !usedHyp.contains($0.offset) }.map(\.element)
    ref = ref.enumerated().filter { !usedRef.contains($0.offset) }.map(\.element)
    return matched
  }

  /// Runs of matches adjacent in both hypothesis and reference.
  static func chunks(_ matches: [(Int, Int)]) -> Int {
    var chunks = 1
    for i in 0..<(matches.count - 1) where !(matches[i + 1].0 == matches[i].0 + 1 && matches[i + 1].1 == matches[i].1 + 1) {
      chunks += 1
    }
    return chunks
  }
}
