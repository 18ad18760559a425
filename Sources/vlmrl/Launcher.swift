import ArgumentParser
import Foundation
import Torch

#if canImport(Glibc)
import Glibc
#endif

/// `vlmrl train|sft --nproc N`: N local ranks of this same binary, as torchrun would start them
/// (docs/distributed.md, "Launch"). Each child gets `WORLD_SIZE`, `RANK`, `LOCAL_RANK`,
/// `MASTER_ADDR=127.0.0.1` and a free `MASTER_PORT`, and the command line without `--nproc`. Their
/// output is forwarded line by line, rank r > 0 prefixed with `[rank r] `. When a rank exits with a
/// failure, the others are terminated (SIGTERM, SIGKILL after a grace period) and the launcher exits
/// 1 after a line naming that rank and its status; when all succeed it returns.
enum LocalLauncher {
  /// Seconds a terminated rank gets before SIGKILL.
  static let gracePeriod: Double = 10

  /// The command line of this process without `--nproc N` / `--nproc=N`.
  static func childArguments(_ arguments: [String]) -> [String] {
    var kept: [String] = [], skipNext = false
    for argument in arguments {
      if skipNext { skipNext = false; continue }
      if argument == "--nproc" { skipNext = true; continue }
      if argument.hasPrefix("--nproc=") { continue }
      kept.append(argument)
    }
    return kept
  }

  /// Runs `count` ranks of this binary with `arguments` (the subcommand and its options) and waits
  /// for them. Refused inside a launched rank (`WORLD_SIZE` already set above 1).
  static func run(_ count: Int, arguments: [String]) throws {
    guard count >= 1 else { throw ValidationError("--nproc must be at least 1, got \(count)") }
    let environment = ProcessInfo.processInfo.environment
    if let world = environment["WORLD_SIZE"], let size = Int(world), size > 1 {
      throw ValidationError("--nproc \(count): this process is already rank \(environment["RANK"] ?? "?") of WORLD_SIZE \(size) "
        + "(torchrun or Slurm launched it); drop --nproc")
    }
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    let port = ProcessGroup.freeLoopbackPort()
    let exited = DispatchSemaphore(value: 0)
    var ranks: [Process] = []
    var forwarders: [LineForwarder] = []
    for rank in 0..<count {
      let process = Process()
      process.executableURL = executable
      process.arguments = arguments
      var childEnvironment = environment
      for (key, value) in ["WORLD_SIZE": "\(count)", "RANK": "\(rank)", "LOCAL_RANK": "\(rank)", "LOCAL_WORLD_SIZE": "\(count)",
                           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "\(port)"] {
        childEnvironment[key] = value
      }
      process.environment = childEnvironment
      let prefix = rank == 0 ? "" : "[rank \(rank)] "
      let out = LineForwarder(prefix: prefix, to: FileHandle.standardOutput)
      let err = LineForwarder(prefix: prefix, to: FileHandle.standardError)
      process.standardOutput = out.pipe
      process.standardError = err.pipe
      process.standardInput = FileHandle.nullDevice
      process.terminationHandler = { _ in exited.signal() }
      do {
        try process.run()
      } catch {
        for started in ranks { kill(started.processIdentifier, SIGKILL) }
        throw ValidationError("--nproc: could not start rank \(rank) (\(executable.path)): \(error)")
      }
      ranks.append(process)
      forwarders += [out, err]
    }
    let signals = forwardSignals(to: ranks)
    defer { withExtendedLifetime(signals) {} }
    var failure: (rank: Int, status: String)?
    var running = count
    while running > 0 {
      exited.wait()
      running -= 1
      if failure == nil, let failed = ranks.enumerated().first(where: { !$0.element.isRunning && !succeeded($0.element) }) {
        failure = (failed.offset, describe(failed.element))
        terminate(ranks.filter(\.isRunning))
      }
    }
    forwarders.forEach { $0.finish() }
    if failure == nil, let failed = ranks.enumerated().first(where: { !succeeded($0.element) }) {
      failure = (failed.offset, describe(failed.element))
    }
    if let failure {
      FileHandle.standardError.write(Data("vlmrl --nproc \(count): rank \(failure.rank) \(failure.status); the other ranks were stopped\n".utf8))
      throw ExitCode(1)
    }
  }

  static func succeeded(_ process: Process) -> Bool {
    process.terminationReason == .exit && process.terminationStatus == 0
  }

  static func describe(_ process: Process) -> String {
    process.terminationReason == .uncaughtSignal
      ? "was killed by signal \(process.terminationStatus)" : "exited with status \(process.terminationStatus)"
  }

  /// SIGTERM now, SIGKILL to those still running after the grace period.
  static func terminate(_ processes: [Process]) {
    for process in processes { kill(process.processIdentifier, SIGTERM) }
    let pids = processes.map(\.processIdentifier)
    DispatchQueue.global().asyncAfter(deadline: .now() + gracePeriod) {
      for (pid, process) in zip(pids, processes) where process.isRunning { kill(pid, SIGKILL) }
    }
  }

  /// SIGINT and SIGTERM to the launcher reach every rank (as a terminal's Ctrl-C reaches a process group).
  static func forwardSignals(to ranks: [Process]) -> [DispatchSourceSignal] {
    [SIGINT, SIGTERM].map { number in
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler { for rank in ranks where rank.isRunning { kill(rank.processIdentifier, number) } }
      source.resume()
      return source
    }
  }
}

/// Copies a child's output to `target` whole lines at a time, each with `prefix`.
final class LineForwarder: @unchecked Sendable {
  let pipe = Pipe()
  private let prefix: Data
  private let target: FileHandle
  private var pending = Data()
  private let lock = NSLock()
  private let closed = DispatchSemaphore(value: 0)

  init(prefix: String, to target: FileHandle) {
    self.prefix = Data(prefix.utf8)
    self.target = target
    pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
      let chunk = handle.availableData
      if chunk.isEmpty {
        handle.readabilityHandler = nil
        self?.closed.signal()
        return
      }
      self?.take(chunk)
    }
  }

  private func take(_ chunk: Data) {
    lock.lock()
    defer { lock.unlock() }
    pending.append(chunk)
    while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
      target.write(prefix + pending[pending.startIndex...newline])
      pending.removeSubrange(pending.startIndex...newline)
    }
  }

  /// Once the child has exited: waits (briefly) for the end of its output and writes what is left
  /// (a last line without a newline).
  func finish() {
    _ = closed.wait(timeout: .now() + 5)
    lock.lock()
    defer { lock.unlock() }
    if !pending.isEmpty { target.write(prefix + pending + Data("\n".utf8)) }
    pending.removeAll()
  }
}
