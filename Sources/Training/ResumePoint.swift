import Common
import Foundation

/// Where a run continues from, as transformers reads `resume_from_checkpoint` (a checkpoint folder,
/// or `true` for the newest one in `output_dir`; `--resume` is the same as `true`), and the check
/// that the config is the one the checkpoint was trained with (its fingerprint in
/// `trainer_state.json`).
public enum ResumePoint {
  /// Keys that may change on resume without changing what trains: where outputs go and how often
  /// they are written, logging, and the resume settings themselves.
  public static let mayChange: Set<String> = [
    "training.output_dir", "training.logging_steps", "training.save_steps", "training.save_total_limit",
    "training.resume_from_checkpoint", "training.allow_config_change", "training.log_completions",
    "training.realtime_rollout_logging", "training.rollout_log_path", "training.attention_diag_log_path",
    "training.colorize_output", "training.reward_failure_patience",
  ]

  /// Whether the run asks to resume (`--resume`, or `resume_from_checkpoint` a path or `true`).
  public static func wanted(config: TrainingConfig, resume: Bool) -> Bool {
    resume || config.training.resumeFromCheckpoint.map { $0 != .bool(false) } ?? false
  }

  /// The checkpoint to continue from: `resume_from_checkpoint: PATH` (which must be a checkpoint
  /// folder), else with `--resume` or `true` the newest one in `outputDirectory` (nil, said in the
  /// log, when there is none).
  public static func checkpoint(config: TrainingConfig, outputDirectory: URL, resume: Bool,
                                log: (String) -> Void) throws -> URL? {
    if let path = config.training.resumeFromCheckpoint?.stringValue {
      let folder = URL(fileURLWithPath: path)
      guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("trainer_state.json").path) else {
        throw TrainingError.invalidConfig(source: "config", path: "training.resume_from_checkpoint",
                                          reason: "\(path) is not a checkpoint folder (it has no trainer_state.json)")
      }
      return folder
    }
    guard wanted(config: config, resume: resume) else { return nil }
    if let last = try Checkpoint.list(outputDirectory).last { return last.url }
    log("resume: no checkpoint in \(outputDirectory.path), starting from step 0")
    return nil
  }

  /// The keys (`section.key`) whose resolved value differs between the fingerprint a checkpoint
  /// saved and `config`, with both values, less `mayChange`. Keys the fingerprint lacks (added to
  /// vlmrl since) are not compared; an unreadable fingerprint compares nothing.
  public static func changedKeys(fingerprint: String, config: TrainingConfig) -> [(key: String, saved: JSONValue, now: JSONValue)] {
    guard let saved = try? JSONValue.parse(Data(fingerprint.utf8)), saved.objectValue != nil else { return [] }
    let current = config.resolvedJSON()
    var changed: [(key: String, saved: JSONValue, now: JSONValue)] = []
    if let old = saved["job_type"], let now = current["job_type"], old != now { changed.append(("job_type", old, now)) }
    for section in ["dataset", "models", "training"] {
      let old = saved[section]?.objectValue ?? [:], now = current[section]?.objectValue ?? [:]
      for key in now.keys.sorted() where !mayChange.contains("\(section).\(key)") {
        guard let before = old[key], let after = now[key], !sameValue(before, after) else { continue }
        changed.append(("\(section).\(key)", before, after))
      }
    }
    return changed
  }

  /// Fails unless the checkpoint's config matches `config` (or `allow_config_change` is set),
  /// naming each changed key with its saved and current value.
  public static func checkUnchanged(_ saved: TrainerState, config: TrainingConfig, checkpoint: URL) throws {
    guard !config.training.allowConfigChange else { return }
    let changed = changedKeys(fingerprint: saved.configFingerprint, config: config)
    guard !changed.isEmpty else { return }
    let list = changed.map { "\($0.key) (\($0.saved.jsonString) -> \($0.now.jsonString))" }.joined(separator: ", ")
    throw TrainingError.invalidArgument("\(checkpoint.path) was trained with another config; changed: \(list). "
      + "Resuming would not continue the same run: restore those values, or pass --allow-config-change "
      + "(training.allow_config_change: true) to resume anyway")
  }

  /// Equal JSON, with an int and a double of the same value equal.
  static func sameValue(_ a: JSONValue, _ b: JSONValue) -> Bool {
    if a == b { return true }
    if let x = a.doubleValue, let y = b.doubleValue, a.arrayValue == nil { return x == y }
    return false
  }
}
