import Foundation

/// An 8-bit RGB image, row-major, channels last (HWC): pixel (x, y) channel c is at
/// `pixels[(y * width + x) * 3 + c]`. This is what transformers' `load_image` hands the processor
/// after PIL's `convert("RGB")`.
public struct RGBImage: Sendable, Equatable {
  public let width: Int
  public let height: Int
  /// `width * height * 3` bytes, RGB8, row-major HWC.
  public var pixels: [UInt8]

  /// Wraps RGB8 pixels; `pixels.count` must equal `width * height * 3` (a programming error otherwise).
  public init(width: Int, height: Int, pixels: [UInt8]) {
    precondition(width >= 0 && height >= 0, "RGBImage: negative size \(width)x\(height)")
    precondition(pixels.count == width * height * 3,
                 "RGBImage: \(pixels.count) bytes for \(width)x\(height) RGB (want \(width * height * 3))")
    self.width = width
    self.height = height
    self.pixels = pixels
  }
}

/// Container formats `decodeImage` understands.
public enum ImageFormat: String, Sendable, CaseIterable {
  case jpeg, png, webp
}

/// A decode or encode failure. Each message names the source (file path or record name).
public enum ImagingError: Error, CustomStringConvertible, Equatable {
  /// The bytes are not JPEG, PNG or WebP (GIF, BMP, TIFF, text, ...).
  case unsupportedFormat(source: String, detail: String)
  /// The data ends before the image does.
  case truncated(source: String, detail: String)
  /// The codec rejected the data (bad header, bad marker, CRC error, ...).
  case corrupt(source: String, detail: String)
  /// Zero-sized or larger than `maxImagePixels`.
  case badDimensions(source: String, width: Int, height: Int, detail: String)
  /// The file could not be read.
  case unreadable(source: String, detail: String)
  /// Encoding failed (only for invalid images handed to the encoders).
  case encodeFailed(detail: String)

  /// The file path or record name the error is about (nil for encoder errors).
  public var source: String? {
    switch self {
    case .unsupportedFormat(let source, _), .truncated(let source, _), .corrupt(let source, _),
      .badDimensions(let source, _, _, _), .unreadable(let source, _):
      return source
    case .encodeFailed:
      return nil
    }
  }

  public var description: String {
    switch self {
    case .unsupportedFormat(let source, let detail):
      return "\(source): unsupported image format (\(detail)); JPEG, PNG and WebP are supported"
    case .truncated(let source, let detail):
      return "\(source): image data is truncated (\(detail))"
    case .corrupt(let source, let detail):
      return "\(source): corrupt image (\(detail))"
    case .badDimensions(let source, let width, let height, let detail):
      return "\(source): bad image size \(width)x\(height) (\(detail))"
    case .unreadable(let source, let detail):
      return "\(source): cannot read image file (\(detail))"
    case .encodeFailed(let detail):
      return "image encoding failed: \(detail)"
    }
  }
}

/// Largest accepted image, in pixels. Matches PIL's decompression-bomb error threshold
/// (`2 * Image.MAX_IMAGE_PIXELS` = 178,956,970), above which `Image.open` raises.
public let maxImagePixels = 178_956_970

/// Identifies the container from its magic bytes; nil for anything else.
public func detectImageFormat(_ data: Data) -> ImageFormat? {
  let head = [UInt8](data.prefix(16))
  if head.count >= 3, head[0] == 0xFF, head[1] == 0xD8, head[2] == 0xFF { return .jpeg }
  if head.count >= 8, head[0..<8].elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
    return .png
  }
  if head.count >= 12, head[0..<4].elementsEqual(Array("RIFF".utf8)),
    head[8..<12].elementsEqual(Array("WEBP".utf8))
  {
    return .webp
  }
  return nil
}

/// Decodes a JPEG, PNG or WebP to RGB8 the way transformers' `load_image` does with PIL:
/// EXIF orientation applied (`ImageOps.exif_transpose`), then `convert("RGB")` (alpha dropped,
/// not composited; gray replicated; CMYK converted with PIL's formula). Throws `ImagingError`
/// naming `source` for anything it cannot decode; never traps on bad data.
public func decodeImage(_ data: Data, source: String) throws -> RGBImage {
  let decoded: RGBImage
  let orientation: Int
  switch try requireFormat(data, source: source) {
  case .jpeg:
    (decoded, orientation) = try decodeJPEG(data, source: source)
  case .png:
    (decoded, orientation) = try decodePNG(data, source: source)
  case .webp:
    (decoded, orientation) = try decodeWebP(data, source: source)
  }
  return applyExifOrientation(decoded, orientation: orientation)
}

/// Reads and decodes an image file; errors name the file path.
public func decodeImage(contentsOf url: URL) throws -> RGBImage {
  try decodeImage(readImageFile(url), source: url.path)
}

/// Width and height from the headers only (no pixel decoding), after EXIF orientation: an image
/// whose orientation is 5-8 reports its sides swapped, as `decodeImage` would return it.
public func imageSize(_ data: Data, source: String) throws -> (width: Int, height: Int) {
  let size: (width: Int, height: Int, orientation: Int)
  switch try requireFormat(data, source: source) {
  case .jpeg: size = try jpegHeaderSize(data, source: source)
  case .png: size = try pngHeaderSize(data, source: source)
  case .webp: size = try webpHeaderSize(data, source: source)
  }
  try checkDimensions(width: size.width, height: size.height, source: source)
  return orientationSwapsSides(size.orientation)
    ? (size.height, size.width) : (size.width, size.height)
}

/// Reads a file for decoding; a missing or unreadable file is an `ImagingError.unreadable`.
func readImageFile(_ url: URL) throws -> Data {
  do {
    return try Data(contentsOf: url)
  } catch {
    throw ImagingError.unreadable(source: url.path, detail: plainFileProblem(url.path))
  }
}

/// Why a file cannot be read, in plain words (never Foundation's error text).
func plainFileProblem(_ path: String) -> String {
  var isFolder: ObjCBool = false
  guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { return "no such file" }
  if isFolder.boolValue { return "is a directory" }
  if !FileManager.default.isReadableFile(atPath: path) { return "permission denied" }
  return "read failed"
}

func requireFormat(_ data: Data, source: String) throws -> ImageFormat {
  if data.isEmpty { throw ImagingError.truncated(source: source, detail: "empty data") }
  guard let format = detectImageFormat(data) else {
    throw ImagingError.unsupportedFormat(source: source, detail: describeMagic(data))
  }
  return format
}

/// Names common formats we refuse, so the message says "GIF" rather than only "unknown".
func describeMagic(_ data: Data) -> String {
  let head = [UInt8](data.prefix(8))
  func starts(_ s: String) -> Bool { head.starts(with: Array(s.utf8)) }
  if starts("GIF8") { return "GIF" }
  if starts("BM") { return "BMP" }
  if starts("II*\0") || starts("MM\0*") { return "TIFF" }
  if head.count >= 4, head[0] == 0, head[1] == 0, head[2] == 1, head[3] == 0 { return "ICO" }
  let hex = head.prefix(4).map { String(format: "%02x", $0) }.joined(separator: " ")
  return "unknown signature \(hex)"
}

/// Zero-sized and decompression-bomb-sized images are refused before any pixel is decoded.
func checkDimensions(width: Int, height: Int, source: String) throws {
  if width <= 0 || height <= 0 {
    throw ImagingError.badDimensions(source: source, width: width, height: height, detail: "zero-sized")
  }
  let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
  if overflow || pixels > maxImagePixels {
    throw ImagingError.badDimensions(
      source: source, width: width, height: height,
      detail: "more than \(maxImagePixels) pixels")
  }
}
