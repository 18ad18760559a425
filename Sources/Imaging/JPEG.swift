import CJPEG
import Foundation

func decodeJPEG(_ data: Data, source: String) throws -> (RGBImage, orientation: Int) {
  throw ImagingError.unsupportedFormat(source: source, detail: "JPEG decoding not yet implemented")
}

func jpegHeaderSize(_ data: Data, source: String) throws -> (width: Int, height: Int, orientation: Int) {
  throw ImagingError.unsupportedFormat(source: source, detail: "JPEG not yet implemented")
}
