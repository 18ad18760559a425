import CWebP
import Foundation

// WebP through libwebp's simple decoder, which reports failure by returning NULL (no longjmp).
// PIL decodes WebP with the same library, so lossless images match exactly.

func decodeWebP(_ data: Data, source: String) throws -> (RGBImage, orientation: Int) {
  let header = try webpHeaderSize(data, source: source)
  try checkDimensions(width: header.width, height: header.height, source: source)
  let image: RGBImage? = data.withUnsafeBytes { raw -> RGBImage? in
    guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return nil }
    var width: Int32 = 0, height: Int32 = 0
    guard let rgb = WebPDecodeRGB(base, raw.count, &width, &height) else { return nil }
    defer { WebPFree(rgb) }
    let count = Int(width) * Int(height) * 3
    let pixels = [UInt8](UnsafeBufferPointer(start: rgb, count: count))
    return RGBImage(width: Int(width), height: Int(height), pixels: pixels)
  }
  guard let image else {
    throw ImagingError.corrupt(source: source, detail: "libwebp could not decode the bitstream")
  }
  return (image, header.orientation)
}

/// Size from the bitstream header (`WebPGetFeatures`) and orientation from the RIFF EXIF chunk.
func webpHeaderSize(_ data: Data, source: String) throws -> (width: Int, height: Int, orientation: Int) {
  var features = WebPBitstreamFeatures()
  let status = data.withUnsafeBytes { raw -> VP8StatusCode in
    guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
      return VP8_STATUS_NOT_ENOUGH_DATA
    }
    return WebPGetFeatures(base, raw.count, &features)
  }
  switch status {
  case VP8_STATUS_OK: break
  case VP8_STATUS_NOT_ENOUGH_DATA:
    throw ImagingError.truncated(source: source, detail: "WebP header incomplete")
  default:
    throw ImagingError.corrupt(source: source, detail: "WebP header rejected (status \(status.rawValue))")
  }
  if features.has_animation != 0 {
    throw ImagingError.unsupportedFormat(source: source, detail: "animated WebP")
  }
  let orientation = webpExifChunk([UInt8](data)).map(exifOrientation) ?? 1
  return (Int(features.width), Int(features.height), orientation)
}

/// The payload of the first "EXIF" chunk of a RIFF/WEBP container, if any.
func webpExifChunk(_ bytes: [UInt8]) -> [UInt8]? {
  var offset = 12
  while offset + 8 <= bytes.count {
    let fourCC = bytes[offset..<offset + 4]
    let size = Int(bytes[offset + 4]) | Int(bytes[offset + 5]) << 8 | Int(bytes[offset + 6]) << 16
      | Int(bytes[offset + 7]) << 24
    let start = offset + 8
    guard size <= bytes.count - start else { return nil }
    if fourCC.elementsEqual(Array("EXIF".utf8)) { return Array(bytes[start..<start + size]) }
    offset = start + size + (size & 1)
  }
  return nil
}
