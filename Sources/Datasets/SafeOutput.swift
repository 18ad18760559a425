import Foundation

/// Writing outputs without losing data (docs/reliability.md):
///
/// - an output that is one of the inputs is refused before anything is read;
/// - an existing output file or non-empty folder is replaced only when the caller says so;
/// - everything is written under a temporary name in the output's own folder and renamed into
///   place at the end, so a killed run leaves at most a hidden `.NAME.partial-*` entry, never a
///   half-written output.
public enum SafeOutput {
  /// Throws `DatasetError.output` when `output` is the same file as one of `inputs` (symbolic
  /// links, `..` and hard links included), or a folder that holds one of them (replacing it would
  /// delete the input).
  public static func refuseInputs(_ output: URL, inputs: [URL]) throws {
    let folder = resolved(output) + "/"
    for input in inputs {
      if sameFile(output, input) {
        throw DatasetError.output(output.path, reason: "is the input file \(input.path); choose another output path")
      }
      if resolved(input).hasPrefix(folder) {
        throw DatasetError.output(output.path, reason: "holds the input file \(input.path); choose another output path")
      }
    }
  }

  static func resolved(_ url: URL) -> String { url.standardizedFileURL.resolvingSymlinksInPath().path }

  /// Throws `DatasetError.output` when `url` exists (a file, or a non-empty folder) and
  /// `overwrite` is false.
  public static func refuseExisting(_ url: URL, overwrite: Bool) throws {
    guard !overwrite, let kind = existing(url) else { return }
    switch kind {
    case .file:
      throw DatasetError.output(url.path, reason: "already exists; pass --overwrite to replace it")
    case .emptyFolder:
      return
    case .folder:
      throw DatasetError.output(url.path, reason: "is a non-empty folder; pass --overwrite to replace it")
    }
  }

  /// Writes a folder: `body` fills a new temporary folder next to `folder`, which then replaces
  /// `folder`. On any error the temporary folder is removed and `folder` is left as it was.
  public static func writeFolder<T>(_ folder: URL, overwrite: Bool, _ body: (URL) throws -> T) throws -> T {
    try refuseExisting(folder, overwrite: overwrite)
    let temporary = try temporarySibling(of: folder)
    do {
      try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: false)
      let result = try body(temporary)
      try install(temporary, at: folder)
      return result
    } catch {
      try? FileManager.default.removeItem(at: temporary)
      throw error
    }
  }

  /// A path in the same folder as `url` (so a rename is atomic) that does not exist yet; the
  /// parent folder is created when missing.
  public static func temporarySibling(of url: URL) throws -> URL {
    let parent = url.deletingLastPathComponent()
    do { try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
      throw DatasetError.output(url.path, reason: "cannot create the folder \(parent.path): \(writeProblem(error))")
    }
    let stamp = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    return parent.appendingPathComponent(".\(url.lastPathComponent).partial-\(stamp)")
  }

  /// Moves a finished temporary file or folder to `url`, replacing what is there. The old entry is
  /// renamed aside first and deleted only after the new one is in place.
  public static func install(_ temporary: URL, at url: URL) throws {
    let manager = FileManager.default
    var aside: URL?
    if let kind = existing(url) {
      if kind == .emptyFolder {
        try? manager.removeItem(at: url)
      } else {
        let old = url.deletingLastPathComponent().appendingPathComponent(
          ".\(url.lastPathComponent).replaced-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do { try manager.moveItem(at: url, to: old) } catch {
          throw DatasetError.output(url.path, reason: "cannot move the old copy aside: \(writeProblem(error))")
        }
        aside = old
      }
    }
    do { try manager.moveItem(at: temporary, to: url) } catch {
      if let aside { try? manager.moveItem(at: aside, to: url) }
      throw DatasetError.output(url.path, reason: "cannot rename the finished output into place")
    }
    if let aside { try? manager.removeItem(at: aside) }
  }

  enum Existing { case file, emptyFolder, folder }

  static func existing(_ url: URL) -> Existing? {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else { return nil }
    guard isFolder.boolValue else { return .file }
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
    return entries.isEmpty ? .emptyFolder : .folder
  }

  /// Whether two paths name the same file: equal after resolving links, or the same device and inode.
  static func sameFile(_ a: URL, _ b: URL) -> Bool {
    if resolved(a) == resolved(b) { return true }
    var first = stat()
    var second = stat()
    guard stat(a.path, &first) == 0, stat(b.path, &second) == 0 else { return false }
    return first.st_dev == second.st_dev && first.st_ino == second.st_ino
  }
}
