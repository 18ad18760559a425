// Running a child process with stdin data, captured output and a timeout.
import Foundation

enum ChildProcess {
  struct Result: Sendable {
    var status: Int32
    var stdout: Data
    var stderr: Data
    var timedOut: Bool
  }

  /// Thread-safe accumulator for data written from pipe-reading threads.
  final class Collector: @unchecked Sendable {
    private let lock = NSLock()
    private var storage = Data()
    func append(_ data: Data) { lock.withLock { storage.append(data) } }
    var data: Data { lock.withLock { storage } }
  }

  final class ProcessBox: @unchecked Sendable {
    let process = Process()
    let lock = NSLock()
    var timedOut = false
  }

  static let ignoreSigpipe: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

  /// Runs `arguments[0]` with the rest as arguments; stdin receives `input` then EOF. After
  /// `timeout` seconds the process is terminated (then killed) and `timedOut` is set.
  static func run(arguments: [String], input: Data, timeout: Double) async throws -> Result {
    ignoreSigpipe
    let box = ProcessBox()
    let process = box.process
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stderr
    let out = Collector(), err = Collector()
    let finished = DispatchGroup()
    for (pipe, collector) in [(stdout, out), (stderr, err)] {
      finished.enter()
      Thread.detachNewThread {
        while true {
          let chunk = pipe.fileHandleForReading.availableData
          if chunk.isEmpty { break }
          collector.append(chunk)
        }
        finished.leave()
      }
    }
    return try await withCheckedThrowingContinuation { continuation in
      process.terminationHandler = { _ in
        finished.notify(queue: .global()) {
          continuation.resume(returning: Result(
            status: box.process.terminationStatus, stdout: out.data, stderr: err.data,
            timedOut: box.lock.withLock { box.timedOut }))
        }
      }
      do {
        try process.run()
      } catch {
        try? stdout.fileHandleForWriting.close()
        try? stderr.fileHandleForWriting.close()
        continuation.resume(throwing: error)
        return
      }
      try? stdout.fileHandleForWriting.close()
      try? stderr.fileHandleForWriting.close()
      Thread.detachNewThread {
        try? stdin.fileHandleForWriting.write(contentsOf: input)
        try? stdin.fileHandleForWriting.close()
      }
      let pid = process.processIdentifier
      DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
        guard box.process.isRunning else { return }
        box.lock.withLock { box.timedOut = true }
        kill(pid, SIGTERM)
        DispatchQueue.global().asyncAfter(deadline: .now() + 2) {
          if box.process.isRunning { kill(pid, SIGKILL) }
        }
      }
    }
  }
}
