// Caption rewards of the Sa2VA plan: `meteor` and `caption` (0.25 METEOR + 0.75 judge).
import Common
import Foundation

enum CaptionRewards {
  /// Loaded databases by path (nil when absent), shared by every reward instance.
  final class WordNetCache: @unchecked Sendable {
    static let shared = WordNetCache()
    private let lock = NSLock()
    private var loaded: [String: WordNet?] = [:]
    private var warned = false

    func wordNet(at path: String?) -> WordNet? {
      lock.withLock {
        let key = path ?? WordNet.defaultPath
        if let cached = loaded[key] { return cached }
        let database = try? WordNet(directory: key)
        loaded[key] = database
        if database == nil, !warned {
          warned = true
          FileHandle.standardError.write(Data(
            "vlmrl: meteor: no WordNet database at \(key); the synonym stage is skipped (set `wordnet`)\n".utf8))
        }
        return database
      }
    }
  }

  /// `wordnet`: a directory, or false / "" to switch the synonym stage off.
  static func meteorScorer(_ p: RewardParameters) throws -> Meteor {
    var wordNet: WordNet? = nil
    if p.value("wordnet")?.boolValue != false, (try p.string("wordnet")) != "" {
      wordNet = WordNetCache.shared.wordNet(at: try p.string("wordnet"))
    }
    return Meteor(
      alpha: try p.double("alpha", default: 0.9), beta: try p.double("beta", default: 3.0),
      gamma: try p.double("gamma", default: 0.5), wordNet: wordNet)
  }

  /// Reference captions: `captions` (list or string), else `caption`, else `solution`.
  static func references(_ sample: RewardSample) -> [String]? {
    if let list = sample.fields["captions"]?.arrayValue?.compactMap(\.stringValue), !list.isEmpty { return list }
    for key in ["captions", "caption", "solution"] {
      if let text = sample.fields[key]?.stringValue { return [AnswerParsing.answer(in: text)] }
    }
    return nil
  }

  static func meteor(_ p: RewardParameters) throws -> any RewardFunction {
    let scorer = try meteorScorer(p)
    return SampleReward(name: p.reward) { sample in
      guard let references = references(sample) else { return nil }
      return scorer.score(hypothesis: AnswerParsing.answer(in: sample.completion), references: references)
    }
  }
}

/// `caption`: `meteor_weight * meteor + judge_weight * llm_judge` (0.25 / 0.75). Where the judge
/// gives nil (no questions, or the judge is down), `judge_fallback` decides: `nil` (default) makes
/// the sample nil, `meteor` scores it with METEOR alone (0..1) and counts it in `fallbacks`.
public struct CaptionReward: RewardFunction {
  /// What a sample scores when the judge gives nil.
  public enum JudgeFallback: String, Sendable, CaseIterable {
    case none = "nil"
    case meteor
  }

  public let name: String
  let meteor: Meteor
  /// The judge part (its `failures` and `generationFailures` counters are the caption's too).
  public let judge: LLMJudgeReward
  let meteorWeight: Double
  let judgeWeight: Double
  public let judgeFallback: JudgeFallback
  /// Samples scored by METEOR alone because the judge gave nil.
  public let fallbacks = LLMJudgeReward.Counter()

  init(parameters p: RewardParameters) throws {
    name = p.reward
    meteor = try CaptionRewards.meteorScorer(p)
    judge = try LLMJudgeReward(parameters: p)
    meteorWeight = try p.double("meteor_weight", default: 0.25)
    judgeWeight = try p.double("judge_weight", default: 0.75)
    let fallback = try p.string("judge_fallback") ?? JudgeFallback.none.rawValue
    guard let parsed = JudgeFallback(rawValue: fallback) else {
      throw p.bad("judge_fallback", "'\(fallback)' is not one of \(JudgeFallback.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    judgeFallback = parsed
  }

  public func score(_ batch: [RewardSample]) async throws -> [Double?] {
    let judged = try await judge.score(batch)
    return zip(batch, judged).map { sample, judgeScore in
      guard let references = CaptionRewards.references(sample) else { return nil }
      let m = meteor.score(hypothesis: AnswerParsing.answer(in: sample.completion), references: references)
      if let judgeScore { return meteorWeight * m + judgeWeight * judgeScore }
      guard judgeFallback == .meteor else { return nil }
      fallbacks.increment()
      return m
    }
  }
}
