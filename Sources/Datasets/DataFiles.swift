import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Finds the data files behind a path: a file, a glob pattern (`data/train-*.parquet`), a Hugging
/// Face `save_to_disk` folder (`state.json` + `data-*.arrow`), or a folder of Parquet / JSON files.
public enum DataFiles {
  /// The files a path stands for, sorted, with the file type each is read as.
  public static func files(at path: String, relativeTo base: URL? = nil) throws -> [URL] {
    if isPattern(path) {
      let matches = expand(pattern: absolutePattern(path, base: base))
      guard !matches.isEmpty else { throw DatasetError.fileNotFound("\(path) (the pattern matches no file)") }
      return matches
    }
    let url = resolveDataPath(path, base: base)
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else {
      throw DatasetError.fileNotFound(url.path)
    }
    return isFolder.boolValue ? try folderFiles(url) : [url]
  }

  /// A reader over all files of `path` (concatenated in sorted order).
  static func reader(at path: String, relativeTo base: URL? = nil) throws -> any RecordReader {
    let parts = try files(at: path, relativeTo: base).map { try reader(forFile: $0) }
    return ConcatenatedReader(name: path, parts: parts)
  }

  static func reader(forFile url: URL) throws -> any RecordReader {
    switch url.pathExtension.lowercased() {
    case "parquet": return ParquetReader(url: url)
    case "arrow": return ArrowReader(url: url)
    case "jsonl", "ndjson": return JSONLinesReader(url: url)
    default:
      // A `.json` file may hold JSON lines: decide by its first non-space byte.
      switch try firstByte(url) {
      case UInt8(ascii: "["): return JSONArrayReader(url: url)
      case UInt8(ascii: "{"):
        let linesFile = try hasSecondLine(url)
        return url.pathExtension.lowercased() == "json" && !linesFile
          ? JSONArrayReader(url: url) : JSONLinesReader(url: url)
      case nil: return JSONLinesReader(url: url)  // an empty file: no records
      default:
        throw DatasetError.unsupportedFile(url.path, reason: "not JSON, JSON lines, Parquet or Arrow")
      }
    }
  }

  /// `json_path` resolution: absolute, else relative to `base` (the YAML's folder) when the file
  /// exists there, else relative to the current directory.
  static func resolveDataPath(_ path: String, base: URL?) -> URL {
    let expanded = (path as NSString).expandingTildeInPath
    if expanded.hasPrefix("/") { return URL(fileURLWithPath: expanded) }
    if let base {
      let candidate = base.appendingPathComponent(expanded)
      if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
    }
    return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(expanded)
  }

  // MARK: Folders

  private static func folderFiles(_ folder: URL) throws -> [URL] {
    let state = folder.appendingPathComponent("state.json")
    if FileManager.default.fileExists(atPath: state.path) { return try saveToDiskFiles(folder, state: state) }
    let all = listRecursively(folder)
    for wanted in [["parquet"], ["arrow"], ["jsonl", "ndjson"], ["json"]] {
      let matches = all.filter { wanted.contains($0.pathExtension.lowercased()) }
        .filter { !["dataset_info.json", "state.json"].contains($0.lastPathComponent) }
      if !matches.isEmpty { return matches }
    }
    throw DatasetError.unsupportedFile(folder.path, reason: "the folder holds no Parquet, Arrow or JSON files")
  }

  /// `state.json` of `Dataset.save_to_disk` lists its shards under `_data_files`.
  private static func saveToDiskFiles(_ folder: URL, state: URL) throws -> [URL] {
    struct State: Decodable {
      struct File: Decodable { var filename: String }
      var _data_files: [File]?
    }
    let decoded: State
    let data = try readFile(state)
    do { decoded = try JSONDecoder().decode(State.self, from: data) } catch {
      let why = JSONSyntax.firstProblem(data).map { "\($0)" } ?? "'_data_files' is not a list of {filename}"
      throw DatasetError.invalidFile(state.path, reason: "not a save_to_disk state file: \(why)")
    }
    if let files = decoded._data_files, !files.isEmpty {
      return files.map { folder.appendingPathComponent($0.filename) }
    }
    let shards = listRecursively(folder).filter { $0.pathExtension == "arrow" }
    guard !shards.isEmpty else { throw DatasetError.fileNotFound("\(folder.path)/data-*.arrow") }
    return shards
  }

  private static func listRecursively(_ folder: URL) -> [URL] {
    guard let enumerator = FileManager.default.enumerator(atPath: folder.path) else { return [] }
    var files: [URL] = []
    while let relative = enumerator.nextObject() as? String {
      let url = folder.appendingPathComponent(relative)
      var isFolder: ObjCBool = false
      if FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), !isFolder.boolValue,
        !relative.split(separator: "/").contains(where: { $0.hasPrefix(".") })
      {
        files.append(url)
      }
    }
    return files.sorted { $0.path < $1.path }
  }

  // MARK: Globs

  static func isPattern(_ path: String) -> Bool { path.contains { "*?[".contains($0) } }

  private static func absolutePattern(_ path: String, base: URL?) -> String {
    let expanded = (path as NSString).expandingTildeInPath
    if expanded.hasPrefix("/") { return expanded }
    if let base {
      let candidate = base.appendingPathComponent(expanded).path
      if !expand(pattern: candidate).isEmpty { return candidate }
    }
    return FileManager.default.currentDirectoryPath + "/" + expanded
  }

  /// Expands a shell-style pattern component by component with `fnmatch` (no `**`).
  static func expand(pattern: String) -> [URL] {
    let components = pattern.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    var paths = [pattern.hasPrefix("/") ? "" : "."]
    for component in components {
      var next: [String] = []
      for prefix in paths {
        if !isPattern(component) {
          next.append(prefix + "/" + component)
          continue
        }
        let folder = prefix.isEmpty ? "/" : prefix
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        for name in names.sorted() where fnmatch(component, name, FNM_PERIOD) == 0 {
          next.append(prefix + "/" + name)
        }
      }
      paths = next
    }
    return paths.filter { FileManager.default.fileExists(atPath: $0) }.map { URL(fileURLWithPath: $0) }
      .sorted { $0.path < $1.path }
  }

  // MARK: Sniffing

  private static func firstByte(_ url: URL) throws -> UInt8? {
    let handle = try openForReading(url)
    defer { try? handle.close() }
    while case let chunk = try readChunk(handle, url, upTo: 4096), !chunk.isEmpty {
      if let byte = chunk.first(where: { ![0x20, 0x09, 0x0A, 0x0D, 0xEF, 0xBB, 0xBF].contains($0) }) { return byte }
    }
    return nil
  }

  /// Whether a `{`-first file has a second non-blank line starting with `{` (JSON lines).
  private static func hasSecondLine(_ url: URL) throws -> Bool {
    var lines = 0
    var secondIsObject = false
    try LineStream.forEachLine(url) { _, line in
      if LineStream.isBlank(line) { return true }
      lines += 1
      if lines == 2 {
        secondIsObject = line.first(where: { $0 != 0x20 && $0 != 0x09 }) == UInt8(ascii: "{")
        return false
      }
      return true
    }
    return secondIsObject
  }
}
