import CPNG
import CZlib
import Foundation

// PNG through libpng's full reader (the simplified png_image API composites alpha and gamma-
// converts 16-bit data, which Pillow does not). Conversions match Pillow's PNG modes followed by
// `convert("RGB")`:
// - 1/2/4-bit gray: scaled to 8 bits by bit replication (Pillow's "1", "L;2", "L;4" unpackers).
// - 16-bit RGB, RGBA, gray+alpha: the high byte of each sample ("RGB;16B", "RGBA;16B", "LA;16B").
// - 16-bit gray: Pillow opens it as mode "I;16" and `convert("RGB")` CLAMPS it to 0...255
//   (value 1000 -> 255, value 200 -> 200); it does not take the high byte.
// - alpha and tRNS are dropped, never composited; gAMA, sBIT, iCCP are ignored, as in Pillow.
// - CRCs: Pillow checks the CRC of every chunk before the first IDAT and never checks IDAT CRCs
//   (its decoder skips them); we check the same chunks in Swift and tell libpng to ignore CRCs.
// Fatal libpng errors end the decode thread (see ContainedThread.swift).

func decodePNG(_ data: Data, source: String) throws -> (RGBImage, orientation: Int) {
  let header = try pngHeaderSize(data, source: source)
  try checkDimensions(width: header.width, height: header.height, source: source)
  try checkPNGChunkCRCsBeforeImageData([UInt8](data), source: source)
  let raw = try data.withUnsafeBytes { bytes -> PNGRows in
    guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
      throw ImagingError.truncated(source: source, detail: "empty data")
    }
    return try runPNGDecoder(input: base, count: bytes.count, source: source)
  }
  guard raw.width == header.width, raw.height == header.height else {
    throw ImagingError.corrupt(source: source, detail: "decoded size differs from the header")
  }
  let rgb = pngRowsToRGB(raw)
  return (RGBImage(width: raw.width, height: raw.height, pixels: rgb), header.orientation)
}

/// Size from IHDR and orientation from an eXIf chunk anywhere in the file (Pillow's `getexif`
/// loads the image first, so an eXIf after the image data counts too).
func pngHeaderSize(_ data: Data, source: String) throws -> (width: Int, height: Int, orientation: Int) {
  let bytes = [UInt8](data)
  guard bytes.count >= 33 else {
    throw ImagingError.truncated(source: source, detail: "PNG ends inside its header")
  }
  guard bytes[12..<16].elementsEqual(Array("IHDR".utf8)) else {
    throw ImagingError.corrupt(source: source, detail: "PNG does not start with IHDR")
  }
  func u32(_ at: Int) -> Int {
    Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
  }
  var orientation = 1
  var offset = 8
  while offset + 8 <= bytes.count {
    let length = u32(offset)
    let start = offset + 8
    guard length <= bytes.count - start else { break }
    let type = bytes[offset + 4..<offset + 8]
    if type.elementsEqual(Array("eXIf".utf8)) {
      orientation = exifOrientation(Array(bytes[start..<start + length]))
      break
    }
    if type.elementsEqual(Array("IEND".utf8)) { break }
    offset = start + length + 4  // data and CRC
  }
  return (u32(16), u32(20), orientation)
}

/// Pillow's `PngStream` verifies the CRC of each chunk it parses before the image data
/// ("broken PNG file (bad header checksum in b'IHDR')"); IDAT CRCs it never reads.
func checkPNGChunkCRCsBeforeImageData(_ bytes: [UInt8], source: String) throws {
  var offset = 8
  while offset + 8 <= bytes.count {
    let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8
      | Int(bytes[offset + 3])
    let type = Array(bytes[offset + 4..<offset + 8])
    if type == Array("IDAT".utf8) { return }
    let end = offset + 8 + length
    guard length <= bytes.count - offset - 12 else {
      throw ImagingError.truncated(source: source, detail: "PNG ends inside a chunk before the image data")
    }
    let stored = UInt(bytes[end]) << 24 | UInt(bytes[end + 1]) << 16 | UInt(bytes[end + 2]) << 8
      | UInt(bytes[end + 3])
    let computed = bytes.withUnsafeBufferPointer { buffer in
      buffer.baseAddress.map { crc32(0, $0 + offset + 4, UInt32(length + 4)) } ?? 0
    }
    guard computed == stored else {
      let name = String(decoding: type, as: UTF8.self)
      throw ImagingError.corrupt(source: source, detail: "bad CRC in PNG chunk \(name)")
    }
    offset = end + 4
  }
}

/// Decoded rows after libpng's transforms: 8-bit with 1-4 channels, or 16-bit gray.
struct PNGRows {
  var width: Int
  var height: Int
  var channels: Int
  var bitDepth: Int
  var rowBytes: Int
  var data: [UInt8]
}

func pngRowsToRGB(_ rows: PNGRows) -> [UInt8] {
  let pixelCount = rows.width * rows.height
  var rgb = [UInt8](repeating: 0, count: pixelCount * 3)
  rows.data.withUnsafeBufferPointer { src in
    for y in 0..<rows.height {
      let row = y * rows.rowBytes
      for x in 0..<rows.width {
        let out = (y * rows.width + x) * 3
        if rows.bitDepth == 16 {  // 16-bit gray: Pillow's I;16 -> RGB clamps
          let value = Int(src[row + x * 2]) << 8 | Int(src[row + x * 2 + 1])
          let clamped = UInt8(min(value, 255))
          (rgb[out], rgb[out + 1], rgb[out + 2]) = (clamped, clamped, clamped)
        } else if rows.channels <= 2 {  // gray, gray+alpha
          let value = src[row + x * rows.channels]
          (rgb[out], rgb[out + 1], rgb[out + 2]) = (value, value, value)
        } else {  // RGB, RGBA
          let at = row + x * rows.channels
          (rgb[out], rgb[out + 1], rgb[out + 2]) = (src[at], src[at + 1], src[at + 2])
        }
      }
    }
  }
  return rgb
}

// MARK: - libpng on a contained thread

private struct PNGJob {
  var png: png_structp? = nil
  var info: png_infop? = nil
  var message: UnsafeMutablePointer<CChar>
  var input: UnsafePointer<UInt8>
  var inputCount: Int
  var position = 0
  var output: UnsafeMutablePointer<UInt8>? = nil
  var rowPointers: UnsafeMutablePointer<png_bytep?>? = nil
  var width = 0
  var height = 0
  var channels = 0
  var bitDepth = 0
  var rowBytes = 0
  var truncated = false
  var rejected = false
}

private let pngMessageCapacity = 256

private func runPNGDecoder(input: UnsafePointer<UInt8>, count: Int, source: String) throws -> PNGRows {
  let job = UnsafeMutablePointer<PNGJob>.allocate(capacity: 1)
  job.initialize(to: PNGJob(message: .allocate(capacity: pngMessageCapacity), input: input, inputCount: count))
  job.pointee.message.initialize(repeating: 0, count: pngMessageCapacity)
  defer {
    if job.pointee.png != nil {
      var png = job.pointee.png, info = job.pointee.info
      png_destroy_read_struct(&png, &info, nil)
    }
    free(job.pointee.output)
    free(job.pointee.rowPointers)
    job.pointee.message.deallocate()
    job.deallocate()
  }
  let completed = try runContained(UnsafeMutableRawPointer(job), source: source) { pngDecodeBody($0) }
  if job.pointee.truncated {
    throw ImagingError.truncated(source: source, detail: "PNG data ends before the image does")
  }
  guard completed, !job.pointee.rejected, let output = job.pointee.output else {
    let message = String(cString: job.pointee.message)
    throw ImagingError.corrupt(source: source, detail: message.isEmpty ? "libpng failed" : "libpng: \(message)")
  }
  let j = job.pointee
  let data = [UInt8](UnsafeBufferPointer(start: output, count: j.rowBytes * j.height))
  return PNGRows(width: j.width, height: j.height, channels: j.channels, bitDepth: j.bitDepth,
                 rowBytes: j.rowBytes, data: data)
}

private func copyMessage(_ job: UnsafeMutablePointer<PNGJob>, _ text: UnsafePointer<CChar>?) {
  guard let text else { return }
  strncpy(job.pointee.message, text, pngMessageCapacity - 1)
  job.pointee.message[pngMessageCapacity - 1] = 0
}

private func rejectPNG(_ job: UnsafeMutablePointer<PNGJob>, _ text: String) -> UnsafeMutableRawPointer? {
  text.withCString { copyMessage(job, $0) }
  job.pointee.rejected = true
  return containedBodyCompleted()
}

/// The decode thread's body: header, Pillow-matching transforms, all rows into a malloc'd buffer.
private func pngDecodeBody(_ raw: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
  guard let job = raw?.assumingMemoryBound(to: PNGJob.self) else { return nil }
  let png = png_create_read_struct(
    PNG_LIBPNG_VER_STRING, raw,
    { png, message in
      if let job = png_get_error_ptr(png)?.assumingMemoryBound(to: PNGJob.self) {
        copyMessage(job, message)
      }
      abortContainedThread()
    },
    { _, _ in })  // warnings ignored, as Pillow does
  guard let png else { return rejectPNG(job, "could not create the libpng reader") }
  job.pointee.png = png
  guard let info = png_create_info_struct(png) else { return rejectPNG(job, "could not create PNG info") }
  job.pointee.info = info
  png_set_read_fn(png, raw) { png, destination, length in
    guard let job = png_get_io_ptr(png)?.assumingMemoryBound(to: PNGJob.self) else { abortContainedThread() }
    guard let destination, length <= job.pointee.inputCount - job.pointee.position else {
      job.pointee.truncated = true
      abortContainedThread()
    }
    memcpy(destination, job.pointee.input + job.pointee.position, length)
    job.pointee.position += length
  }
  // CRCs before IDAT were checked in Swift; IDAT CRCs are ignored as Pillow ignores them.
  png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE)
  png_read_info(png, info)
  let width = Int(png_get_image_width(png, info)), height = Int(png_get_image_height(png, info))
  let pixelCount = width.multipliedReportingOverflow(by: height)
  guard width > 0, height > 0, !pixelCount.overflow, pixelCount.partialValue <= maxImagePixels else {
    return rejectPNG(job, "bad size \(width)x\(height)")
  }
  let colorType = Int32(png_get_color_type(png, info)), bitDepth = Int32(png_get_bit_depth(png, info))
  if colorType == PNG_COLOR_TYPE_PALETTE { png_set_palette_to_rgb(png) }
  if colorType == PNG_COLOR_TYPE_GRAY && bitDepth < 8 { png_set_expand_gray_1_2_4_to_8(png) }
  // strip_16 keeps the high byte, as Pillow's ";16B" unpackers; 16-bit gray is clamped later.
  if bitDepth == 16 && colorType != PNG_COLOR_TYPE_GRAY { png_set_strip_16(png) }
  _ = png_set_interlace_handling(png)
  png_read_update_info(png, info)
  job.pointee.width = width
  job.pointee.height = height
  job.pointee.channels = Int(png_get_channels(png, info))
  job.pointee.bitDepth = Int(png_get_bit_depth(png, info))
  job.pointee.rowBytes = Int(png_get_rowbytes(png, info))
  let total = job.pointee.rowBytes.multipliedReportingOverflow(by: height)
  guard !total.overflow,
    let output = malloc(max(total.partialValue, 1))?.assumingMemoryBound(to: UInt8.self),
    let rows = malloc(height * MemoryLayout<png_bytep?>.stride)?.assumingMemoryBound(to: png_bytep?.self)
  else { return rejectPNG(job, "out of memory for \(width)x\(height)") }
  job.pointee.output = output
  job.pointee.rowPointers = rows
  for y in 0..<height { rows[y] = output + y * job.pointee.rowBytes }
  png_read_image(png, rows)
  return containedBodyCompleted()
}
