// Registry entries of the region, caption and external reward families (the rule-based ones are in
// Registry.swift).
import Common
import Foundation

extension RewardRegistry {
  static let meteorKeys = ["alpha", "beta", "gamma", "wordnet"]
  static let judgeKeys = [
    "url", "model", "api_key", "api_key_env", "timeout", "retries", "backoff", "max_concurrency",
    "generate_questions", "num_questions", "question_cache_size", "generation_max_tokens", "verdict_cache_size",
  ]

  static let regionCaptionExternalEntries: [String: Entry] = [
    "box_iou": Entry(iouKeys) { try RegionRewards.boxIoU($0) },
    "mask_iou": Entry([]) { try RegionRewards.maskIoU($0) },
    "command": Entry(["command", "timeout", "name", "mode"]) { try CommandReward(parameters: $0) },
    "http": Entry(["url", "timeout", "retries", "name"]) { try HTTPReward(parameters: $0) },
    "llm_judge": Entry(judgeKeys) { try LLMJudgeReward(parameters: $0) },
    "caption": Entry(meteorKeys + judgeKeys + ["meteor_weight", "judge_weight", "judge_fallback"]) {
      try CaptionReward(parameters: $0)
    },
    "meteor": Entry(meteorKeys) { try CaptionRewards.meteor($0) },
  ]
}
