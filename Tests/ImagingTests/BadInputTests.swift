import Foundation
import Testing

@testable import Imaging

private func fixtureBytes(_ name: String) throws -> [UInt8] {
  let fixture = try #require(Golden.fixtures(name).first { $0.name == name })
  return [UInt8](try Golden.encoded(fixture))
}

/// The error `decodeImage` throws, or nil when it decodes.
private func decodeError(_ bytes: [UInt8], source: String = "bad.img") -> ImagingError? {
  do {
    _ = try decodeImage(Data(bytes), source: source)
    return nil
  } catch let error as ImagingError {
    return error
  } catch {
    Issue.record("non-ImagingError \(error)")
    return nil
  }
}

private func isTruncation(_ error: ImagingError?) -> Bool {
  if case .truncated = error { return true }
  return false
}

private func isBadDimensions(_ error: ImagingError?) -> Bool {
  if case .badDimensions = error { return true }
  return false
}

// Pillow raises "image file is truncated" for every cut below, including a JPEG that lacks only
// its final EOI marker (checked with Pillow 13.0.0 when writing the golden script).
@Test(arguments: ["jpeg_baseline_420", "jpeg_progressive", "jpeg_cmyk", "png_rgb8", "png_interlaced_gray16"])
func truncatedImagesThrowNamingTheSource(_ name: String) throws {
  let bytes = try fixtureBytes(name)
  let trailer = name.hasPrefix("png") ? 12 : 0  // cutting a PNG's IEND alone is accepted by Pillow
  for cut in [trailer + 2, trailer + 30, bytes.count / 2, bytes.count - 40] {
    let error = decodeError(Array(bytes.prefix(bytes.count - cut)), source: "\(name)-cut\(cut)")
    #expect(isTruncation(error), "\(name) cut by \(cut): \(String(describing: error))")
    #expect(error?.source == "\(name)-cut\(cut)")
  }
}

@Test func pngWithoutIENDStillDecodesAsInPillow() throws {
  let bytes = try fixtureBytes("png_rgb8")
  let image = try decodeImage(Data(bytes.dropLast(12)), source: "no-iend.png")
  let fixture = try #require(Golden.fixtures("png_rgb8").first)
  #expect(image.pixels == (try Golden.pillowPixels(fixture)))
}

@Test(arguments: ["webp_lossy", "webp_lossless"])
func truncatedWebPThrows(_ name: String) throws {
  let bytes = try fixtureBytes(name)
  for keep in [10, 20, 40, bytes.count / 2, bytes.count - 1] {
    let error = decodeError(Array(bytes.prefix(keep)), source: name)
    #expect(error != nil, "\(name) kept \(keep) bytes")
    #expect(error?.source == name)
  }
}

@Test func zeroSizedAndAbsurdJPEGFramesAreRejected() throws {
  let bytes = try fixtureBytes("jpeg_baseline_420")
  let frame = try #require((0..<bytes.count - 1).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC0 })
  // SOF0 layout: marker(2) length(2) precision(1) height(2) width(2).
  for (height, width) in [(0, 40), (24, 0), (0xFFFF, 0xFFFF)] {
    var patched = bytes
    patched[frame + 5] = UInt8(height >> 8)
    patched[frame + 6] = UInt8(height & 0xFF)
    patched[frame + 7] = UInt8(width >> 8)
    patched[frame + 8] = UInt8(width & 0xFF)
    #expect(isBadDimensions(decodeError(patched)), "\(width)x\(height)")
    #expect(throws: ImagingError.self) { try imageSize(Data(patched), source: "patched.jpg") }
  }
}

@Test func zeroSizedAndAbsurdPNGHeadersAreRejected() throws {
  let bytes = try fixtureBytes("png_rgb8")
  for (width, height) in [(0, 24), (40, 0), (100_000, 100_000), (Int(UInt32.max), 1)] {
    var patched = bytes
    for (offset, value) in [(16, width), (20, height)] {
      for byte in 0..<4 { patched[offset + byte] = UInt8((value >> (24 - 8 * byte)) & 0xFF) }
    }
    #expect(isBadDimensions(decodeError(patched)), "\(width)x\(height)")
  }
}

// Outcomes checked against Pillow 13.0.0 on the same edits: a damaged zlib stream raises
// ("broken data stream"), a bad IHDR CRC raises, a bad IDAT CRC is ignored.
@Test func corruptPNGDataIsReportedByLibpng() throws {
  let bytes = try fixtureBytes("png_rgb8")
  let idat = try #require((0..<bytes.count - 4).first { bytes[$0..<$0 + 4].elementsEqual(Array("IDAT".utf8)) })
  for offset in [10, 200, 600] {
    var damaged = bytes
    damaged[idat + offset] ^= 0xFF
    let error = decodeError(damaged, source: "zlib.png")
    guard case .corrupt(let source, let detail) = error else {
      Issue.record("offset \(offset): expected corrupt, got \(String(describing: error))")
      continue
    }
    #expect(source == "zlib.png")
    #expect(detail.contains("libpng"))
  }
}

@Test func pngCRCsAreCheckedWherePillowChecksThem() throws {
  var badHeader = try fixtureBytes("png_rgb8")
  badHeader[29] ^= 1  // last byte of the IHDR CRC
  guard case .corrupt(_, let detail) = decodeError(badHeader) else {
    Issue.record("a bad IHDR CRC must be rejected")
    return
  }
  #expect(detail.contains("IHDR"))

  var badDataCRC = try fixtureBytes("png_rgb8")
  let iend = try #require((0..<badDataCRC.count - 4).last { badDataCRC[$0..<$0 + 4].elementsEqual(Array("IEND".utf8)) })
  badDataCRC[iend - 5] ^= 1  // last byte of the last IDAT's CRC
  let image = try decodeImage(Data(badDataCRC), source: "idat-crc.png")
  let fixture = try #require(Golden.fixtures("png_rgb8").first)
  #expect(image.pixels == (try Golden.pillowPixels(fixture)))
}

@Test func garbageAfterMagicBytesThrows() {
  var generator = SeededGenerator(seed: 7)
  for prefix in [[0xFF, 0xD8, 0xFF], [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]] as [[UInt8]] {
    for length in [0, 1, 5, 40, 500] {
      let garbage = prefix + (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
      #expect(decodeError(garbage) != nil)
    }
  }
  let riff = Array("RIFF\u{10}\u{0}\u{0}\u{0}WEBPVP8 \u{4}\u{0}\u{0}\u{0}abcd".utf8)
  #expect(decodeError(riff) != nil)
}

/// Seeded mutations of every fixture: each decode either succeeds with a consistent image or
/// throws an `ImagingError`; none may crash or hang.
@Test func fuzzedFixturesNeverCrash() throws {
  var generator = SeededGenerator(seed: 2024)
  var decoded = 0, rejected = 0
  for fixture in Golden.fixtures {
    let original = [UInt8](try Golden.encoded(fixture))
    for _ in 0..<120 {
      let mutated = mutate(original, using: &generator)
      do {
        let image = try decodeImage(Data(mutated), source: fixture.name)
        #expect(image.pixels.count == image.width * image.height * 3)
        decoded += 1
      } catch let error as ImagingError {
        #expect(error.source == fixture.name)
        rejected += 1
      }
      _ = try? imageSize(Data(mutated), source: fixture.name)
    }
  }
  #expect(decoded + rejected == Golden.fixtures.count * 120)
  #expect(rejected > 0)
}

private func mutate(_ bytes: [UInt8], using generator: inout SeededGenerator) -> [UInt8] {
  var out = bytes
  switch Int.random(in: 0..<4, using: &generator) {
  case 0:  // flip a few random bytes, mostly in the headers where decoders branch
    for _ in 0..<Int.random(in: 1...4, using: &generator) {
      let limit = Bool.random(using: &generator) ? min(out.count, 200) : out.count
      out[Int.random(in: 0..<limit, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
    }
  case 1:  // truncate
    out = Array(out.prefix(Int.random(in: 0..<out.count, using: &generator)))
  case 2:  // insert random bytes
    let at = Int.random(in: 0...out.count, using: &generator)
    out.insert(contentsOf: (0..<Int.random(in: 1...16, using: &generator)).map { _ in
      UInt8.random(in: 0...255, using: &generator)
    }, at: at)
  default:  // overwrite a span with 0xFF or 0x00 (marker-like runs, zeroed lengths)
    let start = Int.random(in: 0..<out.count, using: &generator)
    let end = min(out.count, start + Int.random(in: 1...8, using: &generator))
    let value: UInt8 = Bool.random(using: &generator) ? 0xFF : 0x00
    for index in start..<end { out[index] = value }
  }
  return out
}

/// SplitMix64: a small seeded generator so the fuzz cases are the same on every run.
struct SeededGenerator: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

@Test func progressiveJPEGWithTooManyScansIsRejected() throws {
  let bytes = try fixtureBytes("jpeg_progressive")
  // Repeat the last scan (its SOS marker up to EOI) until there are more than maxJPEGScans;
  // libjpeg only warns about the repeated progression, so the scan cap is what stops it.
  let lastScan = try #require((0..<bytes.count - 1).last { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xDA })
  let scan = Array(bytes[lastScan..<(bytes.count - 2)])
  var crafted = Array(bytes[..<(bytes.count - 2)])
  for _ in 0..<maxJPEGScans { crafted += scan }
  crafted += [0xFF, 0xD9]
  guard case .corrupt(let source, let detail) = decodeError(crafted, source: "scans.jpg") else {
    Issue.record("expected the scan cap to reject the file")
    return
  }
  #expect(source == "scans.jpg")
  #expect(detail.contains("scans"))
}

@Test func concurrentDecodesAgree() throws {
  let fixtures = Golden.fixtures
  let inputs = try fixtures.map { try Golden.encoded($0) }
  let expected = try fixtures.map { try Golden.pillowPixels($0) }
  // Each iteration writes only its own slot.
  nonisolated(unsafe) let matches = UnsafeMutableBufferPointer<Bool>.allocate(capacity: inputs.count * 4)
  matches.initialize(repeating: false)
  defer { matches.deallocate() }
  DispatchQueue.concurrentPerform(iterations: inputs.count * 4) { index in
    let fixture = index % inputs.count
    guard let image = try? decodeImage(inputs[fixture], source: fixtures[fixture].name) else { return }
    let difference = Golden.maxDifference(image.pixels, expected[fixture])
    matches[index] = difference <= (fixtures[fixture].exact ? 0 : lossyTolerance)
  }
  #expect(matches.allSatisfy { $0 })
}
