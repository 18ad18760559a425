import Foundation
import Testing

@testable import Imaging

@Test func detectsFormatsFromMagicBytes() {
  #expect(detectImageFormat(Data([0xFF, 0xD8, 0xFF, 0xE0])) == .jpeg)
  #expect(detectImageFormat(Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0])) == .png)
  #expect(detectImageFormat(Data("RIFF\u{0}\u{0}\u{0}\u{0}WEBPVP8 ".utf8)) == .webp)
  #expect(detectImageFormat(Data("GIF89a".utf8)) == nil)
  #expect(detectImageFormat(Data()) == nil)
}

@Test func unsupportedFormatsNameTheSource() {
  #expect(throws: ImagingError.unsupportedFormat(source: "a.gif", detail: "GIF")) {
    try decodeImage(Data("GIF89a\u{1}\u{0}\u{1}\u{0}".utf8), source: "a.gif")
  }
  #expect(throws: ImagingError.unsupportedFormat(source: "b.bmp", detail: "BMP")) {
    try decodeImage(Data("BM\u{0}\u{0}\u{0}\u{0}".utf8), source: "b.bmp")
  }
  #expect(throws: ImagingError.truncated(source: "empty", detail: "empty data")) {
    try decodeImage(Data(), source: "empty")
  }
}
