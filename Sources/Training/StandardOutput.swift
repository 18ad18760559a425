// C's `stdout`, the stream Swift's `print` writes to. This file imports the C library alone:
// through Foundation's re-export, reading the C global `stdout` is a Swift 6 concurrency error.
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
@preconcurrency import Darwin
#endif

enum StandardOutput {
  /// Writes `text` through `print`'s stream and flushes it (a bar has no newline to flush a line).
  static func write(_ text: String) {
    fputs(text, stdout)
    fflush(stdout)
  }

  /// Makes the stream line-buffered; only valid before anything was written to it.
  static func lineBuffer() {
    setvbuf(stdout, nil, _IOLBF, Int(BUFSIZ))
  }
}
