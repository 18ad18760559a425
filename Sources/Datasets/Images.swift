import Common
import Foundation
import Imaging

/// Resolves relative paths the way docs/data.md says: against `imageRoot` when one is given;
/// otherwise against the data file's folder, falling back to the current directory.
public struct PathResolver: Sendable {
  public var imageRoot: URL?
  public var dataFolder: URL?

  public init(imageRoot: URL? = nil, dataFolder: URL? = nil) {
    self.imageRoot = imageRoot
    self.dataFolder = dataFolder
  }

  public func resolve(_ path: String) -> URL {
    let expanded = (path as NSString).expandingTildeInPath
    if expanded.hasPrefix("/") { return URL(fileURLWithPath: expanded) }
    if let imageRoot { return imageRoot.appendingPathComponent(expanded) }
    let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    if let dataFolder {
      let candidate = dataFolder.appendingPathComponent(expanded)
      if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
      let fromCwd = cwd.appendingPathComponent(expanded)
      if FileManager.default.fileExists(atPath: fromCwd.path) { return fromCwd }
      return candidate
    }
    return cwd.appendingPathComponent(expanded)
  }
}

/// Reads and decodes images of examples (JPEG, PNG and WebP through `Imaging`).
public enum ImageLoader {
  /// The encoded bytes of an image.
  public static func encodedBytes(_ source: ImageSource) throws -> Data {
    switch source {
    case .bytes(let data, _): return data
    case .file(let url):
      do { return try Data(contentsOf: url) } catch {
        throw DatasetError.image(url.path, reason: "cannot read the file: \(fileProblem(url.path, error: error))")
      }
    }
  }

  /// Checks that an image can be used without decoding its pixels: the file exists and is
  /// readable, the format is JPEG, PNG or WebP, and the header gives a usable size. Returns the
  /// size (EXIF orientation applied). Throws `DatasetError.image` naming the image.
  @discardableResult
  public static func probe(_ source: ImageSource) throws -> (width: Int, height: Int) {
    try size(source)
  }

  /// Decodes an image to RGB8.
  public static func decode(_ source: ImageSource) throws -> RGBImage {
    let data = try encodedBytes(source)
    do { return try decodeImage(data, source: source.name) } catch {
      throw DatasetError.image(source.name, reason: "\(error)")
    }
  }

  /// Width and height from the image header, without decoding pixels. Reads a prefix of a file
  /// first (headers sit near the start) and the whole file only if that is not enough.
  public static func size(_ source: ImageSource) throws -> (width: Int, height: Int) {
    switch source {
    case .bytes(let data, let name):
      return try headerSize(data, name: name)
    case .file(let url):
      let handle: FileHandle
      do { handle = try FileHandle(forReadingFrom: url) } catch {
        throw DatasetError.image(url.path, reason: fileProblem(url.path, error: error))
      }
      defer { try? handle.close() }
      let prefix: Data
      do { prefix = try handle.read(upToCount: headerPrefix) ?? Data() } catch {
        throw DatasetError.image(url.path, reason: "cannot read the file: \(fileProblem(url.path, error: error))")
      }
      if let size = try? imageSize(prefix, source: url.path) { return size }
      if prefix.count < headerPrefix { return try headerSize(prefix, name: url.path) }  // the whole file
      return try headerSize(encodedBytes(source), name: url.path)
    }
  }

  /// Bytes read first when probing a file's header (most headers end in the first few KiB; JPEGs
  /// with large EXIF thumbnails may need the whole file, which is read then).
  static let headerPrefix = 64 * 1024

  private static func headerSize(_ data: Data, name: String) throws -> (width: Int, height: Int) {
    do { return try imageSize(data, source: name) } catch {
      throw DatasetError.image(name, reason: "\(error)")
    }
  }

  /// The file extension for encoded bytes, from their magic numbers (nil when not an image).
  public static func fileExtension(of data: Data) -> String? {
    let head = [UInt8](data.prefix(12))
    if head.starts(with: [0xFF, 0xD8, 0xFF]) { return "jpg" }
    if head.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return "png" }
    if head.count >= 12, head.starts(with: Array("RIFF".utf8)), Array(head[8..<12]) == Array("WEBP".utf8) {
      return "webp"
    }
    if head.starts(with: Array("GIF8".utf8)) { return "gif" }
    if head.starts(with: Array("BM".utf8)) { return "bmp" }
    return nil
  }
}

// MARK: - Image fields

extension Fields {
  /// The images of an image field: a path, a `data:image/...;base64,` URL, a `{bytes, path}`
  /// struct (Hugging Face Image feature), raw bytes, or a list of those.
  func images(_ key: String, resolver: PathResolver, location: RecordLocation, allowEmpty: Bool = false) throws -> [ImageSource] {
    let value = try value(key)
    if let items = value.arrayValue {
      if items.isEmpty, !allowEmpty { throw RecordProblem(.missingField, field: key, "empty image list") }
      return try items.enumerated().map { offset, item in
        try image(item, field: key, resolver: resolver, label: "\(location) image \(offset)")
      }
    }
    return [try image(value, field: key, resolver: resolver, label: "\(location)")]
  }

  func image(_ value: JSONValue, field: String, resolver: PathResolver, label: String) throws -> ImageSource {
    if let data = raw.blob(value) { return .bytes(data, name: label) }
    if let text = value.stringValue {
      if text.hasPrefix("data:") { return .bytes(try decodeDataURL(text, field: field), name: label) }
      guard !text.isEmpty else { throw RecordProblem(.missingField, field: field, "empty image path") }
      return .file(resolver.resolve(text))
    }
    if let object = value.objectValue {
      let path = object["path"]?.stringValue
      if let bytes = object["bytes"], !bytes.isNull {
        if let data = raw.blob(bytes) { return .bytes(data, name: path ?? label) }
        if let text = bytes.stringValue, text.hasPrefix("data:") {
          return .bytes(try decodeDataURL(text, field: field), name: path ?? label)
        }
        throw RecordProblem(.wrongType, field: field, "image bytes are \(preview(bytes)), not binary")
      }
      if let path, !path.isEmpty { return .file(resolver.resolve(path)) }
      throw RecordProblem(.missingField, field: field, "image struct has neither bytes nor path")
    }
    throw RecordProblem(.wrongType, field: field, "expected an image path or struct, found \(preview(value))")
  }

  private func decodeDataURL(_ text: String, field: String) throws -> Data {
    guard let comma = text.firstIndex(of: ","), text[..<comma].hasSuffix(";base64"),
      let data = Data(base64Encoded: String(text[text.index(after: comma)...]), options: .ignoreUnknownCharacters)
    else {
      throw RecordProblem(.unreadableImage, field: field, "data URL is not base64 image data")
    }
    return data
  }
}

// MARK: - Checks a trainer can run mid-run

extension Example {
  /// Decodes every image of the example. A failure throws `DatasetError.badRecord` naming this
  /// record, the image and why (missing file, unknown format, truncated or corrupt data), so a
  /// caller can count the record as bad and skip it under its bad-record policy.
  public func decodeImages() throws -> [RGBImage] {
    try images.enumerated().map { offset, image in
      do { return try ImageLoader.decode(image.source) } catch {
        throw imageProblem(offset, image, error)
      }
    }
  }

  /// Checks every image of the example without keeping the pixels (a full decode: headers alone
  /// do not catch truncated data). Throws as `decodeImages` does.
  public func validateImages() throws {
    _ = try decodeImages()
  }

  private func imageProblem(_ offset: Int, _ image: ImageInfo, _ error: Error) -> DatasetError {
    let missing: Bool
    if case .file(let url) = image.source { missing = !FileManager.default.fileExists(atPath: url.path) } else { missing = false }
    let detail = "\(error)"
    let label = images.count > 1 ? "image \(offset): " : ""
    return .badRecord(BadRecord(
      location: source, field: nil, reason: missing ? .imageNotFound : .unreadableImage, detail: label + detail))
  }
}
