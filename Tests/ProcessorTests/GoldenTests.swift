import Foundation
import Imaging
import ModelConfig
import Testing
import Torch

@testable import Processor

/// transformers' Qwen2VLImageProcessorFast outputs from tools/golden/processor_golden.py.
enum Golden {
  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures")

  struct Stats: Decodable, Sendable {
    var min: Double
    var max: Double
    var mean: Double
    var std: Double
  }

  struct PixelCase: Decodable, Sendable, CustomTestStringConvertible {
    var name: String
    var height: Int
    var width: Int
    var resized_height: Int
    var resized_width: Int
    var grid_thw: [Int]
    var tokens: Int
    var pixel_values_shape: [Int]
    var stats: Stats
    var testDescription: String { name }
    var isIdentity: Bool { height == resized_height && width == resized_width }
  }

  struct GridCase: Decodable, Sendable, CustomTestStringConvertible {
    var name: String
    var height: Int
    var width: Int
    var min_pixels: Int
    var max_pixels: Int
    var override: Bool
    var grid_thw: [Int]?
    var resized_height: Int?
    var resized_width: Int?
    var tokens: Int?
    var rows: Int?
    var error: String?
    var testDescription: String { name }
  }

  struct Expected: Decodable, Sendable {
    var min_pixels: Int
    var max_pixels: Int
    var pixel_cases: [PixelCase]
    var grid_cases: [GridCase]
  }

  static let expected: Expected? = {
    guard let data = try? Data(contentsOf: directory.appendingPathComponent("expected.json")) else { return nil }
    return try? JSONDecoder().decode(Expected.self, from: data)
  }()

  static var pixelCases: [PixelCase] { expected?.pixel_cases ?? [] }
  static var gridCases: [GridCase] { expected?.grid_cases ?? [] }

  /// The processor with the fixtures' settings (checkpoint values except a small max_pixels).
  static func processor() throws -> QwenImageProcessor {
    let expected = try #require(Golden.expected)
    return QwenImageProcessor(minPixels: expected.min_pixels, maxPixels: expected.max_pixels)
  }

  static func image(_ name: String) throws -> RGBImage {
    try decodeImage(contentsOf: directory.appendingPathComponent(name + ".png"))
  }

  /// transformers' pixel_values, float32 little-endian.
  static func pixelValues(_ name: String) throws -> [Float] {
    let data = try Data(contentsOf: directory.appendingPathComponent(name + ".f32"))
    return data.withUnsafeBytes { raw in
      (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
    }
  }

  static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
  }
}

/// Identity resize: only the normalization arithmetic can differ, and it is the same float32 ops.
let identityTolerance: Float = 1e-5
/// A real resize: libtorch's uint8 antialiased bicubic kernel on both sides, so the measured
/// difference is 0 here (AVX-512 and forced-generic kernels alike). The tolerance allows one uint8
/// level (1 / (255 * 0.2613) = 0.0150 after normalization) for other builds of the kernel.
let resizedTolerance: Float = 0.016

@Test func fixturesArePresent() {
  #expect(Golden.pixelCases.count == 5)
  #expect(Golden.gridCases.count == 13)
}

@Test(arguments: Golden.pixelCases)
func pixelValuesMatchTransformers(_ fixture: Golden.PixelCase) throws {
  let processor = try Golden.processor()
  let image = try Golden.image(fixture.name)
  #expect(image.height == fixture.height && image.width == fixture.width)
  let result = try processor.preprocess([image])
  #expect(result.gridTHW == [fixture.grid_thw])
  #expect(result.resizedSizes.count == 1)
  #expect(result.resizedSizes.first?.height == fixture.resized_height)
  #expect(result.resizedSizes.first?.width == fixture.resized_width)
  #expect(result.imageTokenCounts == [fixture.tokens])
  #expect(result.pixelValues.shape == fixture.pixel_values_shape)
  #expect(result.pixelValues.dtype == .float32)
  let ours = result.pixelValues.floats()
  let reference = try Golden.pixelValues(fixture.name)
  try #require(ours.count == reference.count)
  let difference = Golden.maxDifference(ours, reference)
  #expect(difference <= (fixture.isIdentity ? identityTolerance : resizedTolerance),
          "\(fixture.name): max |diff| \(difference)")
}

@Test func batchConcatenatesImagesInOrder() throws {
  let processor = try Golden.processor()
  let cases = Golden.pixelCases
  let images = try cases.map { try Golden.image($0.name) }
  let result = try processor.preprocess(images)
  #expect(result.gridTHW == cases.map(\.grid_thw))
  #expect(result.imageTokenCounts == cases.map(\.tokens))
  let reference = try cases.flatMap { try Golden.pixelValues($0.name) }
  let ours = result.pixelValues.floats()
  try #require(ours.count == reference.count)
  #expect(Golden.maxDifference(ours, reference) <= resizedTolerance)
}

@Test(arguments: Golden.gridCases)
func gridMatchesTransformers(_ fixture: Golden.GridCase) throws {
  let processor = try Golden.processor()
  let minPixels = fixture.override ? fixture.min_pixels : nil
  let maxPixels = fixture.override ? fixture.max_pixels : nil
  if let message = fixture.error {
    #expect(message.contains("aspect ratio"))
    #expect(throws: ProcessorError.self) {
      try processor.gridTHW(height: fixture.height, width: fixture.width, minPixels: minPixels, maxPixels: maxPixels)
    }
    return
  }
  let grid = try processor.gridTHW(
    height: fixture.height, width: fixture.width, minPixels: minPixels, maxPixels: maxPixels)
  #expect(grid == fixture.grid_thw)
  let tokens = try processor.imageTokenCount(
    height: fixture.height, width: fixture.width, minPixels: minPixels, maxPixels: maxPixels)
  #expect(tokens == fixture.tokens)
}

/// The full pipeline (not only the size arithmetic) on the grid cases small enough to run quickly.
@Test(arguments: Golden.gridCases.filter { $0.error == nil && $0.height * $0.width <= 60_000 })
func preprocessRowsMatchTransformers(_ fixture: Golden.GridCase) throws {
  let processor = try Golden.processor()
  let image = RGBImage(
    width: fixture.width, height: fixture.height,
    pixels: [UInt8](repeating: 128, count: fixture.width * fixture.height * 3))
  let result = try processor.preprocess(
    [image], minPixels: fixture.override ? fixture.min_pixels : nil,
    maxPixels: fixture.override ? fixture.max_pixels : nil)
  #expect(result.gridTHW.first == fixture.grid_thw)
  #expect(result.pixelValues.shape == [try #require(fixture.rows), 1176])
}

// MARK: The float resize path (torchvision on CUDA)

/// The resized HWC bytes of one case through `arithmetic`.
func resizedBytes(_ fixture: Golden.PixelCase, arithmetic: ResizeArithmetic) throws -> [UInt8] {
  var processor = try Golden.processor()
  processor.resizeArithmetic = arithmetic
  let image = try Golden.image(fixture.name)
  let resized = processor.resize(
    processor.channelsFirst(image), height: fixture.resized_height, width: fixture.resized_width)
  #expect(resized.dtype == .uint8)
  return resized.permute(1, 2, 0).contiguous().toArray(UInt8.self)
}

/// `.float32` against torchvision's float path run on the CPU by the golden script (interpolate in
/// float32, clamp, round, uint8). Measured difference: 0 levels.
@Test(arguments: Golden.pixelCases.filter { !$0.isIdentity })
func floatResizeMatchesTorchvisionFloatPath(_ fixture: Golden.PixelCase) throws {
  let reference = [UInt8](try Data(contentsOf: Golden.directory.appendingPathComponent(fixture.name + ".float.rgb")))
  let ours = try resizedBytes(fixture, arithmetic: .float32)
  try #require(ours.count == reference.count)
  let levels = zip(ours, reference).reduce(0) { max($0, abs(Int($1.0) - Int($1.1))) }
  #expect(levels <= 1, "\(fixture.name): \(levels) levels")
}

/// The default CPU path is the uint8 kernel, not the float one: on the striped wide image the two
/// part by many levels (13 measured), and only the uint8 kernel matches transformers' CPU output.
@Test func defaultCPUResizeIsTheUInt8Kernel() throws {
  let fixture = try #require(Golden.pixelCases.first { $0.name == "wide_30x250" })
  #expect(try Golden.processor().resizeArithmetic == .uint8)
  let floatPath = [UInt8](try Data(contentsOf: Golden.directory.appendingPathComponent(fixture.name + ".float.rgb")))
  let ours = try resizedBytes(fixture, arithmetic: .uint8)
  let levels = zip(ours, floatPath).reduce(0) { max($0, abs(Int($1.0) - Int($1.1))) }
  #expect(levels >= 5)
}
