import CJPEG
import Foundation

// JPEG through libjpeg(-turbo), set up as Pillow's decoder does (JpegDecode.c): default DCT
// (ISLOW) and fancy upsampling, warnings ignored, out_color_space RGB / GRAYSCALE / CMYK by
// component count. Fatal libjpeg errors end the decode thread (see ContainedThread.swift).

/// Scans above this count abort the decode: a legitimate progressive JPEG has about ten, and a
/// crafted one with thousands makes libjpeg spend minutes (libjpeg-turbo's tools cap at 500).
let maxJPEGScans = 1000

func decodeJPEG(_ data: Data, source: String) throws -> (RGBImage, orientation: Int) {
  let header = try jpegHeaderSize(data, source: source)
  try checkDimensions(width: header.width, height: header.height, source: source)
  let raw = try data.withUnsafeBytes { bytes -> (pixels: [UInt8], components: Int) in
    guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
      throw ImagingError.truncated(source: source, detail: "empty data")
    }
    return try runJPEGDecoder(input: base, count: bytes.count, source: source)
  }
  let rgb: [UInt8]
  switch raw.components {
  case 1: rgb = grayToRGB(raw.pixels)
  case 3: rgb = raw.pixels
  default: rgb = invertedCMYKToRGB(raw.pixels)
  }
  guard rgb.count == header.width * header.height * 3 else {
    throw ImagingError.corrupt(source: source, detail: "decoded size differs from the header")
  }
  return (RGBImage(width: header.width, height: header.height, pixels: rgb), header.orientation)
}

/// Size from the SOF marker and orientation from the first "Exif" APP1 segment, read by walking
/// the markers up to the first scan (no entropy decoding).
func jpegHeaderSize(_ data: Data, source: String) throws -> (width: Int, height: Int, orientation: Int) {
  let header = try scanJPEGMarkers([UInt8](data), source: source)
  return (header.width, header.height, header.exif.map(exifOrientation) ?? 1)
}

struct JPEGHeader {
  var width = 0
  var height = 0
  var components = 0
  var exif: [UInt8]? = nil
}

/// Walks JPEG markers from SOI to SOS. Pillow's parser does the same walk (JpegImagePlugin) and
/// accepts only 1, 3 or 4 components ("cannot handle N-layer images").
func scanJPEGMarkers(_ bytes: [UInt8], source: String) throws -> JPEGHeader {
  var header = JPEGHeader()
  var sawFrame = false
  var offset = 2
  while true {
    guard offset < bytes.count else {
      throw ImagingError.truncated(source: source, detail: "JPEG ends inside its header")
    }
    guard bytes[offset] == 0xFF else {
      throw ImagingError.corrupt(source: source, detail: "JPEG marker expected at byte \(offset)")
    }
    while offset < bytes.count, bytes[offset] == 0xFF { offset += 1 }  // fill bytes
    guard offset < bytes.count else {
      throw ImagingError.truncated(source: source, detail: "JPEG ends inside its header")
    }
    let marker = bytes[offset]
    offset += 1
    if marker == 0x01 || (0xD0...0xD8).contains(marker) { continue }  // no length field
    if marker == 0xD9 || marker == 0x00 {
      throw ImagingError.corrupt(source: source, detail: "JPEG has no image data before marker \(marker)")
    }
    guard offset + 2 <= bytes.count else {
      throw ImagingError.truncated(source: source, detail: "JPEG ends inside its header")
    }
    let length = Int(bytes[offset]) << 8 | Int(bytes[offset + 1])
    guard length >= 2, offset + length <= bytes.count else {
      throw ImagingError.truncated(source: source, detail: "JPEG marker segment runs past the end")
    }
    let segment = bytes[(offset + 2)..<(offset + length)]
    if marker == 0xDA {
      guard sawFrame else {
        throw ImagingError.corrupt(source: source, detail: "JPEG scan before any frame header")
      }
      return header
    }
    if marker == 0xE1, header.exif == nil, segment.starts(with: Array("Exif\0\0".utf8)) {
      header.exif = Array(segment)
    }
    let isFrame = (0xC0...0xCF).contains(marker) && ![0xC4, 0xC8, 0xCC].contains(marker)
    if isFrame, !sawFrame {
      guard segment.count >= 6 else {
        throw ImagingError.corrupt(source: source, detail: "JPEG frame header too short")
      }
      let s = segment.startIndex
      header.height = Int(segment[s + 1]) << 8 | Int(segment[s + 2])
      header.width = Int(segment[s + 3]) << 8 | Int(segment[s + 4])
      header.components = Int(segment[s + 5])
      guard [1, 3, 4].contains(header.components) else {
        throw ImagingError.unsupportedFormat(
          source: source, detail: "JPEG with \(header.components) components")
      }
      sawFrame = true
    }
    offset += length
  }
}

// MARK: - libjpeg on a contained thread

/// Everything the decode thread touches, allocated by the caller so it can be freed whatever
/// way the thread ends.
private struct JPEGJob {
  var cinfo: UnsafeMutablePointer<jpeg_decompress_struct>
  var errorManager: UnsafeMutablePointer<jpeg_error_mgr>
  var sourceManager: UnsafeMutablePointer<jpeg_source_mgr>
  var progress: UnsafeMutablePointer<jpeg_progress_mgr>
  var message: UnsafeMutablePointer<CChar>
  var input: UnsafePointer<UInt8>
  var inputCount: Int
  var output: UnsafeMutablePointer<UInt8>? = nil
  var outputCount = 0
  var components = 0
  var truncated = false
  var rejected = false
}

private let messageCapacity = 256

private func runJPEGDecoder(input: UnsafePointer<UInt8>, count: Int, source: String) throws
  -> (pixels: [UInt8], components: Int)
{
  let job = UnsafeMutablePointer<JPEGJob>.allocate(capacity: 1)
  job.initialize(to: JPEGJob(
    cinfo: .allocate(capacity: 1), errorManager: .allocate(capacity: 1),
    sourceManager: .allocate(capacity: 1), progress: .allocate(capacity: 1),
    message: .allocate(capacity: messageCapacity), input: input, inputCount: count))
  job.pointee.cinfo.initialize(to: jpeg_decompress_struct())
  job.pointee.errorManager.initialize(to: jpeg_error_mgr())
  job.pointee.sourceManager.initialize(to: jpeg_source_mgr())
  job.pointee.progress.initialize(to: jpeg_progress_mgr())
  job.pointee.message.initialize(repeating: 0, count: messageCapacity)
  defer {
    jpeg_destroy_decompress(job.pointee.cinfo)  // safe on a partly created struct (mem == NULL)
    free(job.pointee.output)
    job.pointee.cinfo.deallocate()
    job.pointee.errorManager.deallocate()
    job.pointee.sourceManager.deallocate()
    job.pointee.progress.deallocate()
    job.pointee.message.deallocate()
    job.deallocate()
  }
  let completed = try runContained(UnsafeMutableRawPointer(job), source: source) { jpegDecodeBody($0) }
  if job.pointee.truncated {
    throw ImagingError.truncated(source: source, detail: "JPEG data ends before the image does")
  }
  guard completed, !job.pointee.rejected, let output = job.pointee.output else {
    let message = String(cString: job.pointee.message)
    throw ImagingError.corrupt(source: source, detail: message.isEmpty ? "libjpeg failed" : "libjpeg: \(message)")
  }
  let pixels = [UInt8](UnsafeBufferPointer(start: output, count: job.pointee.outputCount))
  return (pixels, job.pointee.components)
}

private func jobOf(_ common: j_common_ptr?) -> UnsafeMutablePointer<JPEGJob>? {
  common?.pointee.client_data?.assumingMemoryBound(to: JPEGJob.self)
}

private func setMessage(_ job: UnsafeMutablePointer<JPEGJob>, _ text: String) {
  let bytes = Array(text.utf8.prefix(messageCapacity - 1))
  for (index, byte) in bytes.enumerated() { job.pointee.message[index] = CChar(bitPattern: byte) }
  job.pointee.message[bytes.count] = 0
}

private func installCallbacks(_ job: UnsafeMutablePointer<JPEGJob>) {
  let cinfo = job.pointee.cinfo
  cinfo.pointee.err = jpeg_std_error(job.pointee.errorManager)
  job.pointee.errorManager.pointee.error_exit = { common in
    if let common, let job = jobOf(common) {
      common.pointee.err.pointee.format_message(common, job.pointee.message)
    }
    abortContainedThread()
  }
  // Pillow ignores libjpeg warnings (corrupt-data warnings leave gray blocks, as here).
  job.pointee.errorManager.pointee.output_message = { _ in }
  cinfo.pointee.client_data = UnsafeMutableRawPointer(job)

  let sourceManager = job.pointee.sourceManager
  sourceManager.pointee.next_input_byte = job.pointee.input
  sourceManager.pointee.bytes_in_buffer = job.pointee.inputCount
  sourceManager.pointee.init_source = { _ in }
  sourceManager.pointee.term_source = { _ in }
  sourceManager.pointee.resync_to_restart = jpeg_resync_to_restart
  // The whole file is in the buffer, so a request for more data means it is truncated
  // (Pillow raises "image file is truncated" in the same case).
  sourceManager.pointee.fill_input_buffer = { cinfo in
    if let job = cinfo?.pointee.client_data?.assumingMemoryBound(to: JPEGJob.self) {
      job.pointee.truncated = true
    }
    abortContainedThread()
  }
  sourceManager.pointee.skip_input_data = { cinfo, count in
    guard let source = cinfo?.pointee.src, count > 0 else { return }
    if count > source.pointee.bytes_in_buffer {
      _ = source.pointee.fill_input_buffer(cinfo)
    } else {
      source.pointee.next_input_byte += count
      source.pointee.bytes_in_buffer -= count
    }
  }
  cinfo.pointee.src = sourceManager

  job.pointee.progress.pointee.progress_monitor = { common in
    guard let job = jobOf(common), job.pointee.cinfo.pointee.input_scan_number > maxJPEGScans else { return }
    setMessage(job, "more than \(maxJPEGScans) scans")
    abortContainedThread()
  }
  cinfo.pointee.progress = job.pointee.progress
}

/// The decode thread's body: header, start, scanlines into a malloc'd buffer the caller frees.
private func jpegDecodeBody(_ raw: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
  guard let job = raw?.assumingMemoryBound(to: JPEGJob.self) else { return nil }
  let cinfo = job.pointee.cinfo
  installCallbacks(job)
  jpeg_CreateDecompress(cinfo, JPEG_LIB_VERSION, MemoryLayout<jpeg_decompress_struct>.size)
  // CreateDecompress keeps err and client_data but clears the rest.
  cinfo.pointee.src = job.pointee.sourceManager
  cinfo.pointee.progress = job.pointee.progress
  _ = jpeg_read_header(cinfo, 1)
  let width = Int(cinfo.pointee.image_width), height = Int(cinfo.pointee.image_height)
  let pixelCount = width.multipliedReportingOverflow(by: height)
  guard width > 0, height > 0, !pixelCount.overflow, pixelCount.partialValue <= maxImagePixels else {
    setMessage(job, "bad frame size \(width)x\(height)")
    job.pointee.rejected = true
    return containedBodyCompleted()
  }
  switch cinfo.pointee.num_components {
  case 1: cinfo.pointee.out_color_space = JCS_GRAYSCALE
  case 3: cinfo.pointee.out_color_space = JCS_RGB
  case 4: cinfo.pointee.out_color_space = JCS_CMYK
  default:
    setMessage(job, "\(cinfo.pointee.num_components) components")
    job.pointee.rejected = true
    return containedBodyCompleted()
  }
  _ = jpeg_start_decompress(cinfo)
  let components = Int(cinfo.pointee.output_components)
  let stride = Int(cinfo.pointee.output_width) * components
  let rows = Int(cinfo.pointee.output_height)
  guard let output = malloc(max(stride * rows, 1))?.assumingMemoryBound(to: UInt8.self) else {
    setMessage(job, "out of memory for \(stride * rows) bytes")
    job.pointee.rejected = true
    return containedBodyCompleted()
  }
  job.pointee.output = output
  job.pointee.outputCount = stride * rows
  job.pointee.components = components
  while cinfo.pointee.output_scanline < cinfo.pointee.output_height {
    var row: JSAMPROW? = output + Int(cinfo.pointee.output_scanline) * stride
    if jpeg_read_scanlines(cinfo, &row, 1) != 1 {
      setMessage(job, "decoder stopped at row \(cinfo.pointee.output_scanline)")
      job.pointee.rejected = true
      return containedBodyCompleted()
    }
  }
  _ = jpeg_finish_decompress(cinfo)
  return containedBodyCompleted()
}

// MARK: - Pillow's conversions to RGB

/// Pillow's L -> RGB: the gray value in all three channels.
func grayToRGB(_ gray: [UInt8]) -> [UInt8] {
  var rgb = [UInt8](repeating: 0, count: gray.count * 3)
  for (index, value) in gray.enumerated() {
    rgb[index * 3] = value
    rgb[index * 3 + 1] = value
    rgb[index * 3 + 2] = value
  }
  return rgb
}

/// libjpeg's CMYK output, as Pillow converts it: the decoder assumes Adobe (inverted) polarity
/// (rawmode "CMYK;I": each byte is 255 - v), then `convert("RGB")` uses Convert.c `cmyk2rgb`:
/// `channel = nk - nk * c / 255` (rounded as MULDIV255) with `nk = 255 - k`.
func invertedCMYKToRGB(_ inverted: [UInt8]) -> [UInt8] {
  let count = inverted.count / 4
  var rgb = [UInt8](repeating: 0, count: count * 3)
  for pixel in 0..<count {
    let notK = Int(inverted[pixel * 4 + 3])  // 255 - k, with k = 255 - stored
    for channel in 0..<3 {
      let ink = 255 - Int(inverted[pixel * 4 + channel])
      let product = ink * notK + 128
      let scaled = ((product >> 8) + product) >> 8
      rgb[pixel * 3 + channel] = UInt8(clamping: notK - scaled)
    }
  }
  return rgb
}
