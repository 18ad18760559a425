// VLMRLKit: vlmrl as a library (docs/library.md). One import gives another Swift package the
// trainers (GRPOTrainer, SFTTrainer, CycleTrainer and their configs), the reward protocol
// (RewardFunction, RewardSample, RewardRunner, RewardRegistry), the rollout engine, the model
// loaders, the data loaders and the tensor layer they share.
@_exported import Common
@_exported import Datasets
@_exported import Evaluation
@_exported import Generation
@_exported import ModelConfig
@_exported import Models
@_exported import Prompting
@_exported import Rewards
@_exported import Torch
@_exported import Training
