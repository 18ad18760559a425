import Foundation
import Testing
@testable import Training

/// Nothing of a run is lost or mixed: a used output folder needs --resume or --overwrite, two
/// trainers never share one, checkpoint rotation keeps this run's newest, trainer states are checked.
@Suite struct OutputFolderTests {
  func folder(_ name: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-out-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  @Test func aUsedFolderNeedsResumeOrOverwrite() throws {
    let url = try folder("used")
    defer { try? FileManager.default.removeItem(at: url) }
    try Data("{}\n".utf8).write(to: url.appendingPathComponent("metrics.jsonl"))
    try FileManager.default.createDirectory(at: url.appendingPathComponent("checkpoint-4"), withIntermediateDirectories: true)
    try Data("keep".utf8).write(to: url.appendingPathComponent("notes.txt"))
    do {
      _ = try OutputFolder(url, resume: false, overwrite: false)
      Issue.record("a used output folder was accepted")
    } catch {
      #expect("\(error)".contains("--resume") && "\(error)".contains("checkpoint-4"))
    }
    _ = try OutputFolder(url, resume: true, overwrite: false)
    #expect(FileManager.default.fileExists(atPath: url.appendingPathComponent("checkpoint-4").path))
    _ = try OutputFolder(url, resume: false, overwrite: true)
    #expect(!FileManager.default.fileExists(atPath: url.appendingPathComponent("checkpoint-4").path))
    #expect(!FileManager.default.fileExists(atPath: url.appendingPathComponent("metrics.jsonl").path))
    #expect(FileManager.default.fileExists(atPath: url.appendingPathComponent("notes.txt").path), "only run outputs are removed")
  }

  @Test func twoRunsCannotShareAFolder() throws {
    let url = try folder("lock")
    defer { try? FileManager.default.removeItem(at: url) }
    var first: OutputFolder? = try OutputFolder(url, resume: false, overwrite: false)
    #expect(throws: TrainingError.self) { _ = try OutputFolder(url, resume: true, overwrite: false) }
    first = nil
    _ = first
    _ = try OutputFolder(url, resume: true, overwrite: false)
  }

  @Test func negativeStepsInATrainerStateAreRefused() throws {
    let url = try folder("state")
    defer { try? FileManager.default.removeItem(at: url) }
    try Data(#"{"step": -3, "examplesSeen": 0, "seed": 1, "configFingerprint": ""}"#.utf8)
      .write(to: url.appendingPathComponent("trainer_state.json"))
    #expect(throws: TrainingError.self) { _ = try Checkpoint.loadState(url) }
  }
}
