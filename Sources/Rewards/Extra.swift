// Registry entries of the region, caption and external reward families.
import Common
import Foundation

extension RewardRegistry {
  static let extraFactories: [String: Factory] = [
    "box_iou": { try RegionRewards.boxIoU($0) },
    "mask_iou": { try RegionRewards.maskIoU($0) },
    "command": { try CommandReward(parameters: $0) },
    "http": { try HTTPReward(parameters: $0) },
    "llm_judge": { try LLMJudgeReward(parameters: $0) },
    "caption": { try CaptionReward(parameters: $0) },
    "meteor": { try CaptionRewards.meteor($0) },
  ]
  static var extraNames: [String] { Array(extraFactories.keys) }
}
