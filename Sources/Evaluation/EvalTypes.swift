import Common
import Datasets
import Foundation

/// The evaluation protocols of `vlmrl eval`.
public enum EvalTask: String, Sendable, Codable, CaseIterable {
  /// Referring-expression comprehension (RefCOCO/+/g, RefGTA): IoU > 0.5 accuracy and mean IoU.
  case rec
  /// SuperCLEVR counting: the integer answer equals the ground truth.
  case counting
  /// GeoQA: the answer is mathematically equivalent to the ground truth.
  case geoqa
  /// A-OKVQA: multiple-choice and direct-answer accuracy.
  case aokvqa
  /// mmkd grounding: the mean of the configured reward functions.
  case grounding

  /// `--sample-num` when not given: the REC script's 500; the others evaluate every record, as
  /// `test_r1-v.py` does.
  public var defaultSampleNum: Int? { self == .rec ? 500 : nil }

  /// `--max-new-tokens` when not given: the reference scripts' 256; grounding answers a bare box.
  public var defaultMaxNewTokens: Int { self == .grounding ? 32 : 256 }

  /// The record kinds a task reads (detected from the fields, docs/data.md).
  public var acceptedKinds: Set<RecordKind> {
    switch self {
    case .rec: return [.rec]
    case .counting, .geoqa: return [.r1vTest, .r1vQA]
    case .aokvqa: return [.aokvqa]
    case .grounding: return [.singleBox, .multiBox]
    }
  }

  /// Metric names in table order (grounding adds one per reward function).
  public var metricNames: [String] {
    switch self {
    case .rec: return ["accuracy", "mean_iou", "extracted"]
    case .counting, .geoqa: return ["accuracy", "extracted"]
    case .aokvqa: return ["mc_accuracy", "da_accuracy", "extracted"]
    case .grounding: return []
    }
  }
}

/// The exact settings of a run (written to eval.json).
public struct EvalSettings: Sendable, Codable, Equatable {
  /// Model folder, hub id or training checkpoint.
  public var model: String
  /// LoRA adapter folder in peft's layout, applied on top of the model.
  public var adapter: String?
  public var task: EvalTask
  /// Test sets, one file (or folder/glob) each.
  public var data: [String]
  public var imageRoot: String?
  /// REC prompt and box extraction: `r1` or `baseline`.
  public var method: RECPromptStyle
  /// Records drawn per set (seeded, independently per set); nil = every record.
  public var sampleNum: Int?
  public var seed: UInt64
  /// Prompts per rollout-engine call.
  public var batchSize: Int
  public var maxNewTokens: Int
  public var device: String
  public var dtype: String
  /// Reward functions of the grounding task.
  public var rewardFuncs: [String]
  /// Image processor pixel limits (nil: the model's preprocessor_config).
  public var minPixels: Int?
  public var maxPixels: Int?

  public init(model: String, adapter: String? = nil, task: EvalTask, data: [String], imageRoot: String? = nil,
              method: RECPromptStyle = .r1, sampleNum: Int? = nil, seed: UInt64 = 42, batchSize: Int = 32,
              maxNewTokens: Int? = nil, device: String = "cpu", dtype: String = "float32",
              rewardFuncs: [String] = ["format", "gaussian_point", "gaussian_plane"],
              minPixels: Int? = nil, maxPixels: Int? = nil) {
    self.model = model
    self.adapter = adapter
    self.task = task
    self.data = data
    self.imageRoot = imageRoot
    self.method = method
    self.sampleNum = sampleNum
    self.seed = seed
    self.batchSize = batchSize
    self.maxNewTokens = maxNewTokens ?? task.defaultMaxNewTokens
    self.device = device
    self.dtype = dtype
    self.rewardFuncs = rewardFuncs
    self.minPixels = minPixels
    self.maxPixels = maxPixels
  }

  enum CodingKeys: String, CodingKey {
    case model, adapter, task, data, method, seed, device, dtype
    case imageRoot = "image_root", sampleNum = "sample_num", batchSize = "batch_size"
    case maxNewTokens = "max_new_tokens", rewardFuncs = "reward_funcs", minPixels = "min_pixels"
    case maxPixels = "max_pixels"
  }
}

/// One number of a set: a mean over `count` samples.
public struct Metric: Sendable, Codable, Equatable {
  public var name: String
  public var value: Double
  public var count: Int

  public init(name: String, value: Double, count: Int) {
    self.name = name
    self.value = value
    self.count = count
  }

  /// Fractions shown as percentages (accuracies and rates); the rest as plain numbers.
  public var isRate: Bool { ["accuracy", "mc_accuracy", "da_accuracy", "extracted"].contains(name) }

  /// The value as the tables show it.
  public var formatted: String { Metric.format(value, rate: isRate) }

  static func format(_ value: Double, rate: Bool) -> String {
    rate ? String(format: "%.2f%%", value * 100) : String(format: "%.4f", value)
  }
}

/// The result of one test set.
public struct SetResult: Sendable, Codable, Equatable {
  /// The file's name without extension (`refcoco_val`), made unique within a run.
  public var name: String
  public var data: String
  /// Records the set has (nil when it was read without counting, i.e. every record was taken).
  public var available: Int?
  /// Samples evaluated.
  public var evaluated: Int
  /// Records that could not be used, with the reason of each (at most 20 listed).
  public var skipped: Int
  public var skippedRecords: [String]
  public var metrics: [Metric]
  /// Outputs cut at `max_new_tokens`.
  public var truncated: Int
  public var generatedTokens: Int
  public var generationSeconds: Double

  public func metric(_ name: String) -> Metric? { metrics.first { $0.name == name } }

  enum CodingKeys: String, CodingKey {
    case name, data, available, evaluated, skipped, metrics, truncated
    case skippedRecords = "skipped_records", generatedTokens = "generated_tokens"
    case generationSeconds = "generation_seconds"
  }
}

/// eval.json: the settings, the model's family and box frame, every set's numbers and the pooled
/// numbers over all sets.
public struct EvalReport: Sendable, Codable, Equatable {
  public var settings: EvalSettings
  /// `qwen2_vl` or `qwen2_5_vl`.
  public var modelFamily: String
  /// The frame predicted REC boxes were read in (`resized` or `norm1000`); nil for other tasks.
  public var boxFrame: String?
  public var sets: [SetResult]
  /// Means over every sample of every set.
  public var overall: [Metric]
  public var totalSeconds: Double
  /// ISO 8601 time the run finished.
  public var finishedAt: String
  /// Notes a reader needs (e.g. how A-OKVQA difficult questions were found).
  public var notes: [String]

  enum CodingKeys: String, CodingKey {
    case settings, sets, overall, notes
    case modelFamily = "model_family", boxFrame = "box_frame", totalSeconds = "total_seconds"
    case finishedAt = "finished_at"
  }

  /// Reads an eval.json.
  public static func read(_ url: URL) throws -> EvalReport {
    let data: Data
    do { data = try Data(contentsOf: url) } catch { throw EvalError.invalidFile(url.path, "cannot read: \(error.localizedDescription)") }
    do { return try JSONDecoder().decode(EvalReport.self, from: data) } catch {
      throw EvalError.invalidFile(url.path, "not an eval.json: \(error)")
    }
  }
}

/// One line of samples.jsonl.
public struct SampleRecord: Sendable, Codable, Equatable {
  public var set: String
  /// `file #index` of the record.
  public var source: String
  /// The user prompt with `<image>` where each image sits.
  public var prompt: String
  public var output: String
  public var extracted: JSONValue?
  public var groundTruth: JSONValue?
  public var correct: Bool?
  public var values: [String: Double]
  /// false when the output was cut at `max_new_tokens`.
  public var finished: Bool

  enum CodingKeys: String, CodingKey {
    case set, source, prompt, output, extracted, correct, values, finished
    case groundTruth = "ground_truth"
  }
}

/// Evaluation inputs that cannot work; the message names the file, record or setting.
public enum EvalError: Error, CustomStringConvertible, Sendable, Equatable {
  case invalidArgument(String)
  case invalidFile(String, String)
  case unsupported(String)

  public var description: String {
    switch self {
    case .invalidArgument(let message): return message
    case .invalidFile(let path, let message): return "\(path): \(message)"
    case .unsupported(let message): return message
    }
  }
}
