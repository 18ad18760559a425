import Foundation

extension Catalog {
  /// A GRPO config for the tiny model copied to `model`, with `data` as its dataset.
  static func grpoConfig(data: String, maxSteps: Int = 1) -> String {
    """
    {"job_type": "grpo", "dataset": {"labeled_path": "\(data)"}, "models": {"student": "model"},
     "training": {"reward_funcs": ["format"], "output_dir": "out", "per_device_train_batch_size": 2, "roll_out_num": 2,
                  "max_steps": \(maxSteps), "max_completion_length": 4, "max_pixels": 3136}}
    """
  }

  /// Training configs and the files they name: parse errors with line and column, a missing data
  /// file named plainly, CUDA asked for where it cannot load.
  static let configCases: [BadInputCase] = [
    BadInputCase(category: "config", name: "malformed JSON config", expect: .error,
                 culprits: ["grpo.json", "line 3, column 30"]) { folder, _ in
      try write("{\"job_type\": \"grpo\",\n \"models\": {\"student\": \"model\"},\n \"training\": {\"max_steps\": 2,, \"beta\": 0}\n}\n",
                folder, "grpo.json")
      return ["train", "--config", "grpo.json"]
    },
    BadInputCase(category: "config", name: "config cut short", expect: .error, culprits: ["grpo.json", "line 2", "end of file"]) {
      folder, _ in
      try write("{\"job_type\": \"grpo\",\n \"training\": {\"max_steps\": 2", folder, "grpo.json")
      return ["train", "--config", "grpo.json"]
    },
    BadInputCase(category: "config", name: "missing config file", expect: .error, culprits: ["nothere.json", "file not found"]) { _, _ in
      ["train", "--config", "nothere.json"]
    },
    BadInputCase(category: "config", name: "train on a missing data file", expect: .error,
                 culprits: ["not found", "missing.json"]) { folder, base in
      _ = try model(folder, base)
      try write(grpoConfig(data: "missing.json"), folder, "grpo.json")
      return ["train", "--config", "grpo.json"]
    },
    BadInputCase(category: "config", name: "sft on a missing data file", expect: .error,
                 culprits: ["not found", "missing.jsonl"]) { folder, base in
      _ = try model(folder, base)
      try write(grpoConfig(data: "missing.jsonl").replacingOccurrences(of: "\"grpo\"", with: "\"sft\"")
        .replacingOccurrences(of: "\"reward_funcs\": [\"format\"], ", with: ""), folder, "sft.json")
      return ["sft", "--config", "sft.json"]
    },
    // Exit 1 with one line naming the cause on a machine without CUDA; one step on a machine with it.
    BadInputCase(category: "device", name: "train --device cuda where CUDA may be missing", expect: .either,
                 culprits: ["--device cuda", "CUDA"]) { folder, base in
      _ = try model(folder, base)
      try write(try png(), folder, "good.png")
      try write(record("good.png") + "\n" + record("good.png") + "\n", folder, "data.jsonl")
      try write(grpoConfig(data: "data.jsonl"), folder, "grpo.json")
      return ["train", "--config", "grpo.json", "--device", "cuda"]
    },
  ]
}
