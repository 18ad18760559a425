import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A run's output folder: one trainer at a time (an advisory lock on `<output_dir>/.vlmrl.lock`,
/// released when the process ends however it ends), and no silent mixing with an earlier run.
public final class OutputFolder: @unchecked Sendable {
  public let url: URL
  private var descriptor: Int32 = -1

  /// What an earlier run leaves in an output folder.
  static let runFiles = ["metrics.jsonl", "final", "report.html", "resolved_config.json", "runs", "rollouts",
                         "attention_diagnostics"]

  /// Creates and locks the folder. A folder holding an earlier run's outputs is an error unless the
  /// run resumes (`resume`) or `overwrite` clears those outputs first.
  public init(_ url: URL, resume: Bool, overwrite: Bool) throws {
    self.url = url
    let fm = FileManager.default
    do {
      try fm.createDirectory(at: url, withIntermediateDirectories: true)
    } catch {
      throw TrainingError.io(path: url.path, reason: "cannot create the output folder (\(error.localizedDescription))")
    }
    descriptor = open(url.appendingPathComponent(".vlmrl.lock").path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw TrainingError.io(path: url.path, reason: "cannot create the lock file .vlmrl.lock") }
    guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
      close(descriptor)
      descriptor = -1
      throw TrainingError.invalidArgument("\(url.path): another vlmrl run is training into this output folder (it holds "
        + ".vlmrl.lock); wait for it or choose another output_dir")
    }
    let existing = Self.earlierOutputs(url)
    guard !existing.isEmpty, !resume else { return }
    guard overwrite else {
      throw TrainingError.invalidArgument("\(url.path) holds an earlier run (\(existing.prefix(4).joined(separator: ", "))"
        + "\(existing.count > 4 ? ", ..." : "")); continue it with --resume, replace it with --overwrite, or choose another output_dir")
    }
    for name in existing { try? fm.removeItem(at: url.appendingPathComponent(name)) }
  }

  deinit { if descriptor >= 0 { close(descriptor) } }

  /// Checkpoints (complete or partial) and the other outputs of an earlier run, by name.
  static func earlierOutputs(_ url: URL) -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
    return names.filter { name in
      runFiles.contains(name) || name.hasPrefix("checkpoint-") || name.hasPrefix(".checkpoint-")
    }.sorted()
  }
}
