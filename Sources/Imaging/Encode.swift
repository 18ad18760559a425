import CJPEG
import CPNG
import Foundation

/// Encodes RGB8 as PNG (8-bit, no interlace).
public func encodePNG(_ image: RGBImage) throws -> Data {
  throw ImagingError.encodeFailed(detail: "PNG encoding not yet implemented")
}

/// Encodes RGB8 as baseline JPEG with 4:2:0 chroma subsampling; `quality` 1...100.
public func encodeJPEG(_ image: RGBImage, quality: Int) throws -> Data {
  throw ImagingError.encodeFailed(detail: "JPEG encoding not yet implemented")
}
