import Foundation

// EXIF orientation, applied as PIL's `ImageOps.exif_transpose` does (transformers' `load_image`
// calls it before `convert("RGB")`). Only the Orientation tag (0x0112) of IFD0 is read.

/// Orientation from an EXIF block: the TIFF structure, optionally preceded by "Exif\0\0" (as in
/// a JPEG APP1 segment; PIL's `Exif.load` strips the same prefix). Returns 1 (no change) when the
/// tag is absent, malformed, or outside 1...8, as PIL's transpose table does then.
func exifOrientation(_ block: [UInt8]) -> Int {
  var tiff = block[...]
  if tiff.starts(with: Array("Exif\0\0".utf8)) { tiff = tiff.dropFirst(6) }
  let bytes = Array(tiff)
  guard bytes.count >= 8 else { return 1 }
  let bigEndian: Bool
  switch (bytes[0], bytes[1]) {
  case (0x49, 0x49): bigEndian = false
  case (0x4D, 0x4D): bigEndian = true
  default: return 1
  }
  func u16(_ at: Int) -> Int? {
    guard at >= 0, at + 2 <= bytes.count else { return nil }
    let a = Int(bytes[at]), b = Int(bytes[at + 1])
    return bigEndian ? (a << 8 | b) : (b << 8 | a)
  }
  func u32(_ at: Int) -> Int? {
    guard let high = u16(bigEndian ? at : at + 2), let low = u16(bigEndian ? at + 2 : at) else { return nil }
    return high << 16 | low
  }
  guard u16(2) == 42, let ifd = u32(4), let count = u16(ifd) else { return 1 }
  for index in 0..<count {
    let entry = ifd + 2 + index * 12
    guard let tag = u16(entry), let type = u16(entry + 2), let valueCount = u32(entry + 4) else {
      return 1
    }
    guard tag == 0x0112 else { continue }
    // PIL reads a 1-element SHORT / LONG / BYTE as a plain integer; anything else becomes a
    // tuple or string that its transpose table does not contain, i.e. no change.
    guard valueCount == 1 else { return 1 }
    let value: Int?
    switch type {
    case 1: value = entry + 8 < bytes.count ? Int(bytes[entry + 8]) : nil
    case 3: value = u16(entry + 8)
    case 4: value = u32(entry + 8)
    default: value = nil
    }
    guard let value, (1...8).contains(value) else { return 1 }
    return value
  }
  return 1
}

/// True for orientations 5-8, which transpose the image (width and height swap).
func orientationSwapsSides(_ orientation: Int) -> Bool {
  (5...8).contains(orientation)
}

/// Applies an EXIF orientation (1-8) so the image displays upright. The mapping is PIL's:
/// 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE, 6 ROTATE_270 (clockwise 90),
/// 7 TRANSVERSE, 8 ROTATE_90 (counter-clockwise 90).
func applyExifOrientation(_ image: RGBImage, orientation: Int) -> RGBImage {
  guard (2...8).contains(orientation) else { return image }
  let width = image.width, height = image.height
  let swaps = orientationSwapsSides(orientation)
  let outWidth = swaps ? height : width
  let outHeight = swaps ? width : height
  var out = [UInt8](repeating: 0, count: image.pixels.count)
  image.pixels.withUnsafeBufferPointer { src in
    out.withUnsafeMutableBufferPointer { dst in
      for outY in 0..<outHeight {
        for outX in 0..<outWidth {
          // Source pixel for each output pixel.
          let (x, y): (Int, Int)
          switch orientation {
          case 2: (x, y) = (width - 1 - outX, outY)
          case 3: (x, y) = (width - 1 - outX, height - 1 - outY)
          case 4: (x, y) = (outX, height - 1 - outY)
          case 5: (x, y) = (outY, outX)
          case 6: (x, y) = (outY, height - 1 - outX)
          case 7: (x, y) = (width - 1 - outY, height - 1 - outX)
          default: (x, y) = (width - 1 - outY, outX)  // 8
          }
          let from = (y * width + x) * 3, to = (outY * outWidth + outX) * 3
          dst[to] = src[from]
          dst[to + 1] = src[from + 1]
          dst[to + 2] = src[from + 2]
        }
      }
    }
  }
  return RGBImage(width: outWidth, height: outHeight, pixels: out)
}
