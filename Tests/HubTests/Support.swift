import Foundation
import SafeTensors

/// A fresh temporary folder per test.
func makeTempFolder(_ name: String = #function) throws -> URL {
  let clean = name.filter { $0.isLetter || $0.isNumber }
  let url = FileManager.default.temporaryDirectory
    .appendingPathComponent("hub-tests-\(clean)-\(UUID().uuidString.prefix(8))")
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  return url
}

/// The repository's test fixtures of other targets (a Qwen2.5-VL model folder's config files and
/// Hugging Face Parquet shards), served by the loopback hub as repo files.
let testsFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()

func fixtureBytes(_ relative: String) throws -> [UInt8] {
  Array(try Data(contentsOf: testsFolder.appendingPathComponent(relative)))
}

/// A tiny safetensors file (one float32 tensor of 64 values).
func tinySafetensors(in folder: URL) throws -> [UInt8] {
  let values = (0..<64).map { Float($0) * 0.25 }
  let bytes = values.withUnsafeBytes { Array($0) }
  let url = folder.appendingPathComponent("tiny.safetensors")
  try SafeTensorsWriter.write([TensorToWrite(name: "lm_head.weight", dtype: .float32, shape: [8, 8], bytes: bytes)], to: url)
  return Array(try Data(contentsOf: url))
}

/// The files of a tiny model repo: configs kept in git, weights in LFS, and files that must never
/// be downloaded (pickled weights, README, a subfolder).
func tinyModelRepo(commit: String, scratch: URL) throws -> FakeRepo {
  let folder = "ModelConfigTests/Fixtures/folder/"
  var files: [String: FakeRepo.File] = [:]
  for name in ["config.json", "generation_config.json", "preprocessor_config.json", "tokenizer_config.json", "chat_template.json"] {
    files[name] = FakeRepo.File(bytes: try fixtureBytes(folder + name), lfs: false)
  }
  files["tokenizer.json"] = FakeRepo.File(bytes: Array(#"{"version":"1.0","model":{"type":"BPE","vocab":{},"merges":[]}}"#.utf8), lfs: false)
  files["model.safetensors"] = FakeRepo.File(bytes: try tinySafetensors(in: scratch), lfs: true)
  files["pytorch_model.bin"] = FakeRepo.File(bytes: Array(repeating: 7, count: 100), lfs: true)
  files["README.md"] = FakeRepo.File(bytes: Array("# tiny".utf8), lfs: false)
  files["onnx/model.onnx"] = FakeRepo.File(bytes: Array(repeating: 9, count: 50), lfs: true)
  return FakeRepo(commit: commit, files: files)
}

/// An environment with its own cache, pointing at the loopback hub; nothing of the test process's.
func hubEnvironment(_ hub: LoopbackHub, home: URL, extra: [String: String] = [:]) -> [String: String] {
  ["HOME": home.path, "HF_HUB_CACHE": home.appendingPathComponent("cache").path, "HF_ENDPOINT": hub.endpoint]
    .merging(extra) { $1 }
}

let commitA = String(repeating: "a1", count: 20)
let commitB = String(repeating: "b2", count: 20)

/// Collects progress text.
final class ProgressLines: @unchecked Sendable {
  private let lock = NSLock()
  private var text = ""
  var lines: [String] { lock.withLock { text.split(separator: "\n").map(String.init) } }
  func append(_ piece: String) { lock.withLock { text += piece } }
}
