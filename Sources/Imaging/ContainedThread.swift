#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// libjpeg and libpng report fatal errors through a callback that must not return (the C idiom
// is setjmp/longjmp, which Swift cannot use). We run each decode on its own short-lived pthread and
// let the error callback end that thread with `pthread_exit`; the caller joins it, sees the decode
// did not complete, and frees everything the decoder allocated through pointers it still holds.
//
// Rules for code running on the contained thread: no Swift reference-counted values may be live in
// its frames (they would be skipped, i.e. leaked, when the thread exits), so decoders keep all
// state in one manually allocated job struct owned by the caller.

/// Marker address returned by a contained body that ran to completion.
private let completedMarkerAddress = 0x1

/// The value a contained body returns when it finishes normally.
func containedBodyCompleted() -> UnsafeMutableRawPointer? {
  UnsafeMutableRawPointer(bitPattern: completedMarkerAddress)
}

/// Ends the current contained thread; `runContained` then returns false. Call only from a
/// library callback running inside a `runContained` body.
func abortContainedThread() -> Never {
  pthread_exit(nil)
}

/// Runs `body(job)` on a fresh thread and waits for it. Returns true when the body returned
/// `containedBodyCompleted()`, false when it ended through `abortContainedThread()`.
/// Throws when no thread could be started.
func runContained(
  _ job: UnsafeMutableRawPointer,
  source: String,
  _ body: @escaping @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer?
) throws -> Bool {
  #if canImport(Glibc)
    var thread = pthread_t()
  #else
    var thread: pthread_t? = nil
  #endif
  var attributes = pthread_attr_t()
  pthread_attr_init(&attributes)
  defer { pthread_attr_destroy(&attributes) }
  // Decoders need little stack; a fixed size keeps `ulimit -s unlimited` from mattering.
  pthread_attr_setstacksize(&attributes, 1 << 20)
  let created = pthread_create(&thread, &attributes, body, job)
  guard created == 0 else {
    throw ImagingError.unreadable(source: source, detail: "could not start a decoder thread (error \(created))")
  }
  var result: UnsafeMutableRawPointer? = nil
  #if canImport(Glibc)
    pthread_join(thread, &result)
  #else
    pthread_join(thread!, &result)
  #endif
  return result == containedBodyCompleted()
}
