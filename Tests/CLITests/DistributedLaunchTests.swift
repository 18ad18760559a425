import Foundation
import Testing

/// `vlmrl train --nproc 2` as two OS processes over Gloo on loopback (docs/distributed.md): the final
/// weights equal one process's with the same global batch (ZeRO 0 and 2), a 2-rank ZeRO checkpoint
/// resumes on one process, and a rank killed mid-step ends the run with an error instead of a hang.
@Suite(.serialized) struct DistributedLaunchTests {
  /// A tiny model, 16 synthetic records and a GRPO config in a fresh folder.
  struct Workspace {
    let executable: URL
    let folder: URL

    init() throws {
      executable = try #require(Harness.executable(), "no vlmrl binary next to the test bundle: build it or set VLMRL=path")
      folder = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-dist-\(UUID().uuidString.prefix(8))")
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      try Harness.makeTinyModelAndData(executable, in: folder)
      // Two prompts of G = 2 per step on one process (batch 4), one per rank on two (batch 2).
      let config = """
        {"job_type": "grpo", "dataset": {"labeled_path": "data/single_box.json"}, "models": {"student": "model"},
         "training": {"reward_funcs": ["format", "mdi"], "compute_attention_metrics": true, "output_dir": "out",
                      "per_device_train_batch_size": 4,
                      "roll_out_num": 2, "max_steps": 3, "max_completion_length": 6, "save_steps": 2, "logging_steps": 1,
                      "learning_rate": 0.001, "warmup_steps": 0, "seed": 5, "max_pixels": 3136, "temperature": 1.0}}
        """
      try Data(config.utf8).write(to: folder.appendingPathComponent("grpo.json"))
    }

    func train(_ output: String, nproc: Int?, zeroStage: Int = 0, extra: [String] = [], environment: [String: String] = [:])
      throws -> Harness.Run {
      let batch = 4 / (nproc ?? 1)
      let arguments = ["train", "--config", "grpo.json", "--set", "training.output_dir=\(output)",
                       "--set", "training.per_device_train_batch_size=\(batch)", "--set", "training.zero_stage=\(zeroStage)"]
        + (nproc.map { ["--nproc", "\($0)"] } ?? []) + extra
      return try Harness.run(executable, arguments, in: folder, timeout: 300, environment: ["VLMRL_DIST_TIMEOUT": "30"].merging(environment) { $1 })
    }

    func weights(_ model: String) throws -> [String: [Float]] { try SafeTensorsFloats.read(folder.appendingPathComponent(model)) }
  }

  /// How far apart two trained models are, relative to how far training moved them from `start`:
  /// the L2 norm of their difference over the norm of `a - start`, over every tensor. Float32 sums in
  /// another order move a few near-zero gradient entries by up to a learning rate under Adam, so a
  /// per-element bound would be noise; a wrong gradient (one rank's alone, or not averaged) moves
  /// the whole update and shows here as a ratio near 1.
  static func difference(_ a: [String: [Float]], _ b: [String: [Float]], start: [String: [Float]]) -> Double {
    var apart = 0.0, moved = 0.0
    for (name, x) in a {
      guard let y = b[name], let w = start[name], y.count == x.count, w.count == x.count else { return .infinity }
      for index in x.indices {
        apart += pow(Double(x[index] - y[index]), 2)
        moved += pow(Double(x[index] - w[index]), 2)
      }
    }
    return (apart / max(moved, 1e-30)).squareRoot()
  }

  /// (a) and (c): two ranks with ZeRO 0 and 2 end where one process ends; the ZeRO-2 run's
  /// checkpoint at step 2 (one optimizer shard per rank) resumes on one process and reaches the
  /// same final weights as the two ranks did, and on two ranks exactly those weights.
  @Test func twoProcessesTrainAsOneAndTheirCheckpointResumesOnOne() throws {
    let work = try Workspace()
    defer { try? FileManager.default.removeItem(at: work.folder) }
    let single = try work.train("single", nproc: nil)
    try #require(single.status == 0, "one process failed: \(single.stderr.suffix(3000))")
    let reference = try work.weights("single/final"), start = try work.weights("model")
    let movedTensors = reference.filter { $0.value != start[$0.key] }.count
    #expect(movedTensors > reference.count / 2, "training moved \(movedTensors) of \(reference.count) tensors")
    for stage in [0, 2] {
      let ranks = try work.train("ranks\(stage)", nproc: 2, zeroStage: stage)
      try #require(ranks.status == 0, "zero_stage \(stage) on 2 ranks failed: \(ranks.stdout.suffix(2000)) \(ranks.stderr.suffix(3000))")
      #expect(ranks.stdout.contains("on each of 2 ranks"), "\(ranks.stdout.suffix(2000))")
      let difference = Self.difference(try work.weights("ranks\(stage)/final"), reference, start: start)
      #expect(difference < 1e-3, "zero_stage \(stage): 2 ranks vs 1 process differ by \(difference) of the update")
    }
    let checkpoint = work.folder.appendingPathComponent("ranks2/checkpoint-2")
    for file in ["optimizer-rank0-of-2.safetensors", "optimizer-rank1-of-2.safetensors", "optimizer-shards.json"] {
      #expect(FileManager.default.fileExists(atPath: checkpoint.appendingPathComponent(file).path), "\(file) missing")
    }
    // Resume the ZeRO-2 run from step 2 on one process with the same global batch.
    let finished = try work.weights("ranks2/final")
    for name in ["checkpoint-3", "final"] { try FileManager.default.removeItem(at: work.folder.appendingPathComponent("ranks2/\(name)")) }
    let resumed = try work.train("ranks2", nproc: nil, zeroStage: 2, extra: ["--resume", "--allow-config-change"])
    try #require(resumed.status == 0, "resume on one process failed: \(resumed.stderr.suffix(3000))")
    #expect(resumed.stdout.contains("resumed from checkpoint-2 at step 2"), "\(resumed.stdout.suffix(2000))")
    let difference = Self.difference(try work.weights("ranks2/final"), finished, start: start)
    #expect(difference < 1e-3, "resumed on 1 process vs 2 ranks differ by \(difference) of the update")
    let versusOne = Self.difference(try work.weights("ranks2/final"), reference, start: start)
    #expect(versusOne < 1e-3, "resumed on 1 process vs 1 process throughout differ by \(versusOne) of the update")
    // On the same world size each rank's shard comes back as it was: the same weights, bit for bit.
    for name in ["checkpoint-3", "final"] { try FileManager.default.removeItem(at: work.folder.appendingPathComponent("ranks2/\(name)")) }
    let again = try work.train("ranks2", nproc: 2, zeroStage: 2, extra: ["--resume"])
    try #require(again.status == 0, "resume on 2 ranks failed: \(again.stderr.suffix(3000))")
    #expect(try work.weights("ranks2/final") == finished, "resumed on 2 ranks vs 2 ranks throughout")
  }

  /// (b): rank 1 killed (SIGKILL) as it starts step 1. Under the launcher, the launcher stops rank 0
  /// and exits 1 naming rank 1 and the signal; launched by hand, rank 0 meets the dead peer in its
  /// next collective and exits with an error naming itself, within the bounded time, never hanging.
  @Test func aKilledRankEndsTheRunWithAnError() throws {
    let work = try Workspace()
    defer { try? FileManager.default.removeItem(at: work.folder) }
    let fault = ["VLMRL_FAULT_KILL": "1:1", "VLMRL_DIST_TIMEOUT": "20"]
    let launched = try work.train("launched", nproc: 2, environment: fault)
    #expect(!launched.timedOut, "the launcher hung")
    #expect(launched.status == 1, "status \(launched.status)")
    #expect(launched.stderr.contains("rank 1 was killed by signal 9"), "\(launched.stderr.suffix(3000))")

    let port = 20000 + Int.random(in: 0..<20000)
    let ranks = try (0..<2).map { rank -> (Process, URL) in
      let process = Process()
      process.executableURL = work.executable
      process.arguments = ["train", "--config", "grpo.json", "--set", "training.output_dir=manual", "--set",
                           "training.per_device_train_batch_size=2"]
      process.currentDirectoryURL = work.folder
      process.environment = ProcessInfo.processInfo.environment.merging(fault.merging([
        "WORLD_SIZE": "2", "RANK": "\(rank)", "LOCAL_RANK": "\(rank)", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "\(port)",
      ]) { $1 }) { $1 }
      let log = work.folder.appendingPathComponent("rank\(rank).log")
      FileManager.default.createFile(atPath: log.path, contents: nil)
      let handle = try FileHandle(forWritingTo: log)
      process.standardOutput = handle
      process.standardError = handle
      process.standardInput = FileHandle.nullDevice
      try process.run()
      return (process, log)
    }
    let deadline = Date().addingTimeInterval(300)
    while ranks.contains(where: { $0.0.isRunning }), Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
    let hung = ranks.filter { $0.0.isRunning }
    for (process, _) in hung { kill(process.processIdentifier, SIGKILL) }
    for (process, _) in ranks { process.waitUntilExit() }
    #expect(hung.isEmpty, "a rank was still running after 300 s")
    let survivor = ranks[0], log = String(decoding: (try? Data(contentsOf: survivor.1)) ?? Data(), as: UTF8.self)
    #expect(survivor.0.terminationReason == .exit && survivor.0.terminationStatus == 1, "rank 0: \(log.suffix(3000))")
    #expect(log.contains("rank 0 of 2") && log.contains("failed"), "rank 0's error: \(log.suffix(3000))")
    #expect(ranks[1].0.terminationReason == .uncaughtSignal)
  }
}

/// The float tensors of a model folder's `*.safetensors` files (F32 and BF16), by name: enough of
/// the format to compare two checkpoints without libtorch.
enum SafeTensorsFloats {
  static func read(_ folder: URL) throws -> [String: [Float]] {
    var tensors: [String: [Float]] = [:]
    let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".safetensors") }
    for name in files {
      let data = try Data(contentsOf: folder.appendingPathComponent(name))
      let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
      let header = try #require(try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
      for (key, value) in header where key != "__metadata__" {
        guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
          let range = entry["data_offsets"] as? [Int], ["F32", "BF16"].contains(dtype) else { continue }
        let bytes = [UInt8](data.subdata(in: (8 + headerLength + range[0])..<(8 + headerLength + range[1])))
        let width = dtype == "F32" ? 4 : 2
        tensors[key] = stride(from: 0, to: bytes.count, by: width).map { start in
          var bits: UInt32 = 0
          for byte in 0..<width { bits |= UInt32(bytes[start + byte]) << (8 * byte) }
          return Float(bitPattern: width == 4 ? bits : bits << 16)
        }
      }
    }
    return tensors
  }
}
