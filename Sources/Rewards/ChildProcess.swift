// Child processes of the `command` reward: each started in its own process group, talked to over
// non-blocking pipes under a deadline, and killed as a whole group (shell, program and any
// background grandchildren), so no child can hold scoring past its timeout.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A running child: its pid (also its process group id) and our ends of its three pipes
/// (non-blocking, close-on-exec).
final class ChildProcess: @unchecked Sendable {
  struct Output: Sendable {
    /// Exit status: the exit code, or 128 + signal number when a signal ended it.
    var status: Int32
    var stdout: Data
    var stderr: Data
    var timedOut: Bool
  }

  enum SpawnError: Error, CustomStringConvertible {
    case failed(program: String, errno: Int32)
    var description: String {
      switch self {
      case .failed(let program, let code): return "cannot start '\(program)': \(String(cString: strerror(code)))"
      }
    }
  }

  let pid: pid_t
  private(set) var stdinFD: Int32
  private(set) var stdoutFD: Int32
  private(set) var stderrFD: Int32
  private var reaped = false
  private var exitStatus: Int32 = 0

  static let ignoreSigpipe: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

  /// Starts `arguments[0]` (an absolute path) with the rest as arguments, the parent's environment,
  /// in a new process group, with SIGPIPE back at its default action.
  /// Held from creating the pipes until the child started: pipes are marked close-on-exec just
  /// after creation, and a concurrent spawn of ours in between would leak them into its child.
  private static let spawnLock = NSLock()

  init(arguments: [String]) throws {
    Self.ignoreSigpipe
    Self.spawnLock.lock()
    defer { Self.spawnLock.unlock() }
    var inPipe: [Int32] = [-1, -1], outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
    for index in 0..<3 {
      var fds: [Int32] = [-1, -1]
      guard pipe(&fds) == 0 else {
        let code = errno
        for fd in inPipe + outPipe + errPipe where fd >= 0 { close(fd) }
        throw SpawnError.failed(program: arguments.first ?? "", errno: code)
      }
      for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
      switch index {
      case 0: inPipe = fds
      case 1: outPipe = fds
      default: errPipe = fds
      }
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
    posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    posix_spawnattr_setpgroup(&attributes, 0)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    sigaddset(&defaults, SIGPIPE)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    var mask = sigset_t()
    sigemptyset(&mask)
    posix_spawnattr_setsigmask(&attributes, &mask)
    posix_spawnattr_setflags(
      &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
    let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var child: pid_t = 0
    let result = posix_spawn(&child, arguments[0], &actions, &attributes, argv, environ)
    close(inPipe[0])
    close(outPipe[1])
    close(errPipe[1])
    guard result == 0 else {
      close(inPipe[1])
      close(outPipe[0])
      close(errPipe[0])
      throw SpawnError.failed(program: arguments[0], errno: result)
    }
    pid = child
    stdinFD = inPipe[1]
    stdoutFD = outPipe[0]
    stderrFD = errPipe[0]
    for fd in [stdinFD, stdoutFD, stderrFD] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
  }

  deinit {
    terminate()
  }

  /// Whether the child itself has exited (left unreaped, so its pid and group id stay reserved
  /// until `terminate`).
  var hasExited: Bool {
    if reaped { return true }
    var info = siginfo_t()
    guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 else { return true }
    return info._sifields._sigchld.si_pid != 0
  }

  /// Kills the whole process group, closes our pipe ends and reaps the child; returns its status.
  @discardableResult
  func terminate() -> Int32 {
    if !reaped {
      // The child is not reaped yet, so the group id cannot have been reused.
      kill(-pid, SIGKILL)
      var status: Int32 = 0
      while waitpid(pid, &status, 0) < 0, errno == EINTR {}
      exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
      reaped = true
    }
    closeStdin()
    for fd in [stdoutFD, stderrFD] where fd >= 0 { close(fd) }
    stdoutFD = -1
    stderrFD = -1
    return exitStatus
  }

  func closeStdin() {
    if stdinFD >= 0 { close(stdinFD) }
    stdinFD = -1
  }

  /// One round of I/O: writes what it can of `input[offset...]`, reads what stdout and stderr have,
  /// waiting at most `wait` seconds (and at most 50 ms) for anything to happen. A pipe at end of
  /// file is closed (`stdoutFD` / `stderrFD` become -1).
  func pump(
    input: [UInt8], offset: inout Int, stdout: inout Data, stderr: inout Data, wait: Double,
    closeStdinWhenWritten: Bool = true
  ) {
    var fds: [pollfd] = []
    if stdinFD >= 0, offset < input.count { fds.append(pollfd(fd: stdinFD, events: Int16(POLLOUT), revents: 0)) }
    if stdoutFD >= 0 { fds.append(pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)) }
    if stderrFD >= 0 { fds.append(pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0)) }
    guard !fds.isEmpty else {
      usleep(useconds_t(max(0, min(wait, 0.02)) * 1e6))
      return
    }
    let ready = poll(&fds, nfds_t(fds.count), Int32(max(0, min(wait, 0.05) * 1000)) + 1)
    guard ready > 0 else { return }
    for entry in fds where entry.revents != 0 {
      if entry.fd == stdinFD {
        let written = input.withUnsafeBytes { buffer -> Int in
          guard let base = buffer.baseAddress else { return 0 }
          return write(stdinFD, base + offset, min(input.count - offset, 1 << 16))
        }
        if written > 0 {
          offset += written
          if offset >= input.count, closeStdinWhenWritten { closeStdin() }
        } else if written < 0, errno != EAGAIN, errno != EINTR {
          // The child closed its stdin (EPIPE): nothing more can be sent.
          offset = input.count
          closeStdin()
        }
      } else if entry.fd == stdoutFD {
        if !readAvailable(stdoutFD, into: &stdout) {
          close(stdoutFD)
          stdoutFD = -1
        }
      } else if entry.fd == stderrFD {
        if !readAvailable(stderrFD, into: &stderr) {
          close(stderrFD)
          stderrFD = -1
        }
      }
    }
  }

  /// Reads what the pipe holds; false at end of file or on an error.
  private func readAvailable(_ fd: Int32, into data: inout Data) -> Bool {
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if count > 0 {
        data.append(contentsOf: buffer[0..<count])
        if count < buffer.count { return true }
        continue
      }
      if count == 0 { return false }
      return errno == EAGAIN || errno == EINTR
    }
  }

  /// How long the child's output may keep flowing after the child itself exited: a background
  /// grandchild that inherited the pipes must not hold the batch.
  static let drainAfterExit = 0.2

  /// Runs `arguments` with `input` on stdin (then EOF) and collects its output, for at most
  /// `timeout` seconds; then (or once the child exited and its pipes drained) the whole process
  /// group is killed. Blocking: call from a thread of its own (`run` does).
  static func runBlocking(arguments: [String], input: Data, timeout: Double) throws -> Output {
    let child = try ChildProcess(arguments: arguments)
    let bytes = [UInt8](input)
    var offset = 0
    if bytes.isEmpty { child.closeStdin() }
    var stdout = Data(), stderr = Data()
    let deadline = Date().addingTimeInterval(timeout)
    var exitedAt: Date?
    var timedOut = false
    while true {
      let now = Date()
      if exitedAt == nil, child.hasExited { exitedAt = now }
      if let exitedAt {
        if child.stdoutFD < 0 && child.stderrFD < 0 { break }
        if now.timeIntervalSince(exitedAt) > drainAfterExit { break }
      }
      if now >= deadline {
        timedOut = exitedAt == nil
        break
      }
      child.pump(input: bytes, offset: &offset, stdout: &stdout, stderr: &stderr,
                 wait: deadline.timeIntervalSince(now))
    }
    let status = child.terminate()
    return Output(status: status, stdout: stdout, stderr: stderr, timedOut: timedOut)
  }

  /// `runBlocking` on a thread of its own.
  static func run(arguments: [String], input: Data, timeout: Double) async throws -> Output {
    try await withCheckedThrowingContinuation { continuation in
      Thread.detachNewThread {
        continuation.resume(with: Result { try runBlocking(arguments: arguments, input: input, timeout: timeout) })
      }
    }
  }
}
