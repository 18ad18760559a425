import CJPEG
import CPNG
import Foundation

/// Encodes RGB8 as an 8-bit PNG (libpng's simplified writer, which reports errors by return value).
public func encodePNG(_ image: RGBImage) throws -> Data {
  guard image.width > 0, image.height > 0 else {
    throw ImagingError.encodeFailed(detail: "PNG of an empty \(image.width)x\(image.height) image")
  }
  var control = png_image()
  control.version = UInt32(PNG_IMAGE_VERSION)
  control.width = UInt32(image.width)
  control.height = UInt32(image.height)
  control.format = UInt32(PNG_FORMAT_RGB)
  defer { png_image_free(&control) }
  return try image.pixels.withUnsafeBytes { pixels -> Data in
    var size: png_alloc_size_t = 0
    guard png_image_write_to_memory(&control, nil, &size, 0, pixels.baseAddress, 0, nil) != 0, size > 0 else {
      throw ImagingError.encodeFailed(detail: "libpng: \(pngImageMessage(&control))")
    }
    var output = Data(count: Int(size))
    let written = output.withUnsafeMutableBytes { buffer in
      png_image_write_to_memory(&control, buffer.baseAddress, &size, 0, pixels.baseAddress, 0, nil)
    }
    guard written != 0 else {
      throw ImagingError.encodeFailed(detail: "libpng: \(pngImageMessage(&control))")
    }
    return output.prefix(Int(size))
  }
}

private func pngImageMessage(_ control: inout png_image) -> String {
  withUnsafeBytes(of: &control.message) { raw in
    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
  }
}

/// Encodes RGB8 as a baseline JPEG (libjpeg defaults: 4:2:0 chroma, optimized tables off, JFIF);
/// `quality` is clamped to 1...100. libjpeg errors (out of memory) end a contained thread and
/// come back as `ImagingError.encodeFailed`.
public func encodeJPEG(_ image: RGBImage, quality: Int) throws -> Data {
  guard image.width > 0, image.height > 0, image.width <= 65_500, image.height <= 65_500 else {
    throw ImagingError.encodeFailed(detail: "JPEG cannot hold a \(image.width)x\(image.height) image")
  }
  return try image.pixels.withUnsafeBufferPointer { pixels -> Data in
    guard let base = pixels.baseAddress else { throw ImagingError.encodeFailed(detail: "no pixels") }
    let job = UnsafeMutablePointer<JPEGEncodeJob>.allocate(capacity: 1)
    job.initialize(to: JPEGEncodeJob(
      cinfo: .allocate(capacity: 1), errorManager: .allocate(capacity: 1), pixels: base,
      width: image.width, height: image.height, quality: min(max(quality, 1), 100),
      output: .allocate(capacity: 1), outputSize: .allocate(capacity: 1)))
    job.pointee.output.initialize(to: nil)
    job.pointee.outputSize.initialize(to: 0)
    job.pointee.cinfo.initialize(to: jpeg_compress_struct())
    job.pointee.errorManager.initialize(to: jpeg_error_mgr())
    defer {
      jpeg_destroy_compress(job.pointee.cinfo)
      free(job.pointee.output.pointee)
      job.pointee.output.deallocate()
      job.pointee.outputSize.deallocate()
      job.pointee.cinfo.deallocate()
      job.pointee.errorManager.deallocate()
      job.deallocate()
    }
    let completed = try runContained(UnsafeMutableRawPointer(job), source: "JPEG encoder") {
      jpegEncodeBody($0)
    }
    guard completed, let output = job.pointee.output.pointee else {
      throw ImagingError.encodeFailed(detail: "libjpeg could not encode the image")
    }
    return Data(bytes: output, count: Int(job.pointee.outputSize.pointee))
  }
}

private struct JPEGEncodeJob {
  var cinfo: UnsafeMutablePointer<jpeg_compress_struct>
  var errorManager: UnsafeMutablePointer<jpeg_error_mgr>
  var pixels: UnsafePointer<UInt8>
  var width: Int
  var height: Int
  var quality: Int
  /// Where jpeg_mem_dest stores its malloc'd buffer and the encoded size.
  var output: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>
  var outputSize: UnsafeMutablePointer<UInt>
}

private func jpegEncodeBody(_ raw: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
  guard let job = raw?.assumingMemoryBound(to: JPEGEncodeJob.self) else { return nil }
  let cinfo = job.pointee.cinfo
  cinfo.pointee.err = jpeg_std_error(job.pointee.errorManager)
  job.pointee.errorManager.pointee.error_exit = { _ in abortContainedThread() }
  job.pointee.errorManager.pointee.output_message = { _ in }
  jpeg_CreateCompress(cinfo, JPEG_LIB_VERSION, MemoryLayout<jpeg_compress_struct>.size)
  // The caller frees the buffer jpeg_mem_dest allocates, however the thread ends.
  jpeg_mem_dest(cinfo, job.pointee.output, job.pointee.outputSize)
  cinfo.pointee.image_width = JDIMENSION(job.pointee.width)
  cinfo.pointee.image_height = JDIMENSION(job.pointee.height)
  cinfo.pointee.input_components = 3
  cinfo.pointee.in_color_space = JCS_RGB
  jpeg_set_defaults(cinfo)
  jpeg_set_quality(cinfo, Int32(job.pointee.quality), 1)
  jpeg_start_compress(cinfo, 1)
  let stride = job.pointee.width * 3
  while cinfo.pointee.next_scanline < cinfo.pointee.image_height {
    var row: JSAMPROW? = UnsafeMutablePointer(mutating: job.pointee.pixels + Int(cinfo.pointee.next_scanline) * stride)
    _ = jpeg_write_scanlines(cinfo, &row, 1)
  }
  jpeg_finish_compress(cinfo)
  return containedBodyCompleted()
}
