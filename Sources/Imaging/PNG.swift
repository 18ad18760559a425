import CPNG
import Foundation

func decodePNG(_ data: Data, source: String) throws -> (RGBImage, orientation: Int) {
  throw ImagingError.unsupportedFormat(source: source, detail: "PNG decoding not yet implemented")
}

func pngHeaderSize(_ data: Data, source: String) throws -> (width: Int, height: Int, orientation: Int) {
  throw ImagingError.unsupportedFormat(source: source, detail: "PNG not yet implemented")
}
