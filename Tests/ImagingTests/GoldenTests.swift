import Foundation
import Testing

@testable import Imaging

/// Fixtures and Pillow's decodes from tools/golden/imaging_fixtures.py.
enum Golden {
  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures")

  struct Fixture: Decodable, Sendable, CustomTestStringConvertible {
    var name: String
    var file: String
    var width: Int
    var height: Int
    var exact: Bool
    var testDescription: String { name }
  }

  struct Manifest: Decodable { var fixtures: [Fixture] }

  static let fixtures: [Fixture] = {
    guard let data = try? Data(contentsOf: directory.appendingPathComponent("expected.json")),
      let manifest = try? JSONDecoder().decode(Manifest.self, from: data)
    else { return [] }
    return manifest.fixtures
  }()

  static func fixtures(_ prefix: String) -> [Fixture] { fixtures.filter { $0.name.hasPrefix(prefix) } }

  static func encoded(_ fixture: Fixture) throws -> Data {
    try Data(contentsOf: directory.appendingPathComponent(fixture.file))
  }

  static func pillowPixels(_ fixture: Fixture) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: directory.appendingPathComponent(fixture.name + ".rgb")))
  }

  /// Largest absolute per-channel difference.
  static func maxDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
    zip(a, b).reduce(0) { max($0, abs(Int($1.0) - Int($1.1))) }
  }
}

/// JPEG and lossy WebP: the system codec (libjpeg-turbo 2.1, libwebp 1.2) against the one bundled
/// with Pillow (libjpeg-turbo 3.2, libwebp 1.6). Same algorithms (ISLOW IDCT, fancy upsampling),
/// so the observed difference is 0; the tolerance leaves room for other builds.
let lossyTolerance = 2

@Test func manifestLists37Fixtures() {
  #expect(Golden.fixtures.count == 37)
}

@Test(arguments: Golden.fixtures)
func decodesLikePillow(_ fixture: Golden.Fixture) throws {
  let data = try Golden.encoded(fixture)
  let image = try decodeImage(data, source: fixture.file)
  let expected = try Golden.pillowPixels(fixture)
  #expect(image.width == fixture.width)
  #expect(image.height == fixture.height)
  try #require(image.pixels.count == expected.count)
  if fixture.exact {
    #expect(image.pixels == expected, "\(fixture.name): max diff \(Golden.maxDifference(image.pixels, expected))")
  } else {
    #expect(Golden.maxDifference(image.pixels, expected) <= lossyTolerance)
  }
}

@Test(arguments: Golden.fixtures)
func headerSizeMatchesDecodedSize(_ fixture: Golden.Fixture) throws {
  let size = try imageSize(try Golden.encoded(fixture), source: fixture.file)
  #expect(size.width == fixture.width && size.height == fixture.height)
}

@Test func decodesFromFileURL() throws {
  let fixture = try #require(Golden.fixtures("png_rgb8").first)
  let image = try decodeImage(contentsOf: Golden.directory.appendingPathComponent(fixture.file))
  #expect(image.pixels == (try Golden.pillowPixels(fixture)))
}

@Test func missingFileNamesThePath() {
  let url = Golden.directory.appendingPathComponent("no_such_image.png")
  do {
    _ = try decodeImage(contentsOf: url)
    Issue.record("expected an error")
  } catch let error as ImagingError {
    #expect(error.source == url.path)
    #expect(error.description.contains("no_such_image.png"))
  } catch {
    Issue.record("unexpected error \(error)")
  }
}
