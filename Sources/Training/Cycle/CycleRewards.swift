import Common
import Foundation
import Rewards

/// Loop 1's reward: the partner grounded the policy's caption back to a box (in the model's frame);
/// its IoU with the truth region after mapping to original pixels — against the rasterised mask when
/// the data has one, else box against box. No box in the partner's answer scores 0; a record without
/// a truth region is not applicable (nil).
struct RegionIoUReward: RewardFunction {
  let name = "region_iou"
  let frame: BoxFrame

  func score(_ batch: [RewardSample]) async throws -> [Double?] {
    batch.map { sample in
      guard let truth = Region(fields: sample.fields) else { return nil }
      guard let box = AnswerParsing.firstBox(in: AnswerParsing.answer(in: sample.completion)) else { return 0 }
      return truth.iou(predicted: frame.toOriginal(box, image: sample.images.first))
    }
  }
}

/// Loop 2's reward: the partner's caption of the policy's region against the record's captions,
/// `meteor_weight * METEOR + judge_weight * judge` (the plan's 0.25 / 0.75). A sample whose policy
/// grounding had no box (an empty caption here) scores 0 without asking the judge. When the judge
/// gives nil (down, or an unreadable reply) the sample's reward is nil: it takes no part in its
/// group's advantages, and the run goes on; such samples are counted (`judge_missing`). With judge
/// weight 0 no judge is built (METEOR alone).
struct CaptionCycleReward: RewardFunction {
  let name = "caption_cycle"
  let meteor: any RewardFunction
  let judge: LLMJudgeReward?
  let meteorWeight: Double
  let judgeWeight: Double

  func score(_ batch: [RewardSample]) async throws -> [Double?] {
    try await scoreWithMetrics(batch).values
  }

  func scoreWithMetrics(_ batch: [RewardSample]) async throws -> (values: [Double?], metrics: [String: Double]) {
    let asked = batch.indices.filter { !batch[$0].completion.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
    let meteorScores = try await meteor.score(asked.map { batch[$0] })
    var judgeScores: [Double?] = Array(repeating: nil, count: asked.count)
    let before = judge?.verdicts?.counts
    if let judge {
      // Only samples with references (a METEOR score) are worth a judge request.
      let judged = asked.indices.filter { meteorScores[$0] != nil }
      for (position, score) in zip(judged, try await judge.score(judged.map { batch[asked[$0]] })) { judgeScores[position] = score }
    }
    var values = [Double?](repeating: 0, count: batch.count)
    var meteorValues: [Double] = [], judgeValues: [Double] = [], missing = 0
    for (position, index) in asked.enumerated() {
      guard let m = meteorScores[position] else {
        values[index] = nil
        continue
      }
      meteorValues.append(m)
      if judge == nil {
        values[index] = meteorWeight * m
      } else if let j = judgeScores[position] {
        judgeValues.append(j)
        values[index] = meteorWeight * m + judgeWeight * j
      } else {
        missing += 1
        values[index] = nil
      }
    }
    var metrics: [String: Double] = ["judge_missing": Double(missing)]
    if !meteorValues.isEmpty { metrics["meteor"] = meteorValues.reduce(0, +) / Double(meteorValues.count) }
    if !judgeValues.isEmpty { metrics["judge"] = judgeValues.reduce(0, +) / Double(judgeValues.count) }
    if let before, let after = judge?.verdicts?.counts {
      metrics["judge_cache_hits"] = Double(after.hits - before.hits)
    }
    return (values, metrics)
  }
}
