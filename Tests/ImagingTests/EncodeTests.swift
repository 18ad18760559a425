import Foundation
import Testing

@testable import Imaging

/// A deterministic test pattern (not a fixture: the encoders' output is checked by decoding it).
func testPattern(width: Int, height: Int) -> RGBImage {
  var pixels = [UInt8](repeating: 0, count: width * height * 3)
  for y in 0..<height {
    for x in 0..<width {
      let at = (y * width + x) * 3
      pixels[at] = UInt8(x * 255 / max(width - 1, 1))
      pixels[at + 1] = UInt8(y * 255 / max(height - 1, 1))
      pixels[at + 2] = UInt8((x + y) * 255 / max(width + height - 2, 1))
    }
  }
  return RGBImage(width: width, height: height, pixels: pixels)
}

@Test func pngRoundTripIsLossless() throws {
  let image = testPattern(width: 37, height: 21)
  let data = try encodePNG(image)
  #expect(detectImageFormat(data) == .png)
  #expect(try decodeImage(data, source: "round trip") == image)
}

@Test func pngOfPillowFixtureMatchesItsPixels() throws {
  // Our PNG of Pillow's decoded pixels decodes back to exactly those pixels.
  let fixture = try #require(Golden.fixtures("png_palette").first)
  let pillow = RGBImage(width: fixture.width, height: fixture.height, pixels: try Golden.pillowPixels(fixture))
  #expect(try decodeImage(encodePNG(pillow), source: "re-encoded") == pillow)
}

@Test func jpegRoundTripIsClose() throws {
  let image = testPattern(width: 64, height: 48)
  let high = try encodeJPEG(image, quality: 95)
  let low = try encodeJPEG(image, quality: 10)
  #expect(detectImageFormat(high) == .jpeg)
  #expect(low.count < high.count)
  let decoded = try decodeImage(high, source: "round trip")
  #expect(decoded.width == 64 && decoded.height == 48)
  let meanError = zip(decoded.pixels, image.pixels).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }
    / image.pixels.count
  #expect(meanError <= 2)
}

@Test func encodersRejectEmptyImages() {
  let empty = RGBImage(width: 0, height: 5, pixels: [])
  #expect(throws: ImagingError.self) { try encodePNG(empty) }
  #expect(throws: ImagingError.self) { try encodeJPEG(empty, quality: 90) }
}
