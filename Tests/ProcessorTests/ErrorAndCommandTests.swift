import Foundation
import Imaging
import ModelConfig
import Testing
import Torch

@testable import Processor

func solidImage(height: Int, width: Int, value: UInt8 = 90) -> RGBImage {
  RGBImage(width: width, height: height, pixels: [UInt8](repeating: value, count: height * width * 3))
}

// MARK: Bad input

@Test func aspectRatioOver200NamesTheImage() throws {
  let processor = QwenImageProcessor(minPixels: 3136, maxPixels: 9408)
  let images = [solidImage(height: 56, width: 56), solidImage(height: 1, width: 201)]
  do {
    _ = try processor.preprocess(images, names: ["good.png", "banner.png"])
    Issue.record("expected an error")
  } catch let error as ProcessorError {
    let message = error.description
    #expect(message.contains("banner.png"))
    #expect(message.contains("aspect ratio must be smaller than 200"))
    #expect(message.contains("height 1, width 201"))
  }
  // Without names, the index names it.
  #expect(throws: ProcessorError.invalidImage(
    name: "image 1", height: 1, width: 201,
    reason: "absolute aspect ratio must be smaller than 200, got 201.0")) {
    try processor.preprocess(images)
  }
}

@Test func emptyImageIsRefused() {
  let processor = QwenImageProcessor(minPixels: 3136, maxPixels: 9408)
  #expect(throws: ProcessorError.self) { try processor.preprocess(solidImage(height: 0, width: 0), name: "empty.png") }
}

@Test func badPixelLimitOverridesAreRefused() {
  let processor = QwenImageProcessor(minPixels: 3136, maxPixels: 9408)
  let image = solidImage(height: 56, width: 56)
  #expect(throws: ProcessorError.invalidPixelLimits(minPixels: 5000, maxPixels: 4000)) {
    try processor.preprocess([image], minPixels: 5000, maxPixels: 4000)
  }
  #expect(throws: ProcessorError.invalidPixelLimits(minPixels: 0, maxPixels: 9408)) {
    try processor.preprocess([image], minPixels: 0)
  }
}

@Test func nameCountMustMatch() {
  let processor = QwenImageProcessor(minPixels: 3136, maxPixels: 9408)
  #expect(throws: ProcessorError.nameCountMismatch(images: 1, names: 2)) {
    try processor.preprocess([solidImage(height: 56, width: 56)], names: ["a", "b"])
  }
}

@Test func resizeOffNeedsMultiplesOfTheFactor() throws {
  var config = ImageProcessorConfig()
  config.doResize = false
  let processor = QwenImageProcessor(config: config)
  #expect(throws: ProcessorError.self) { try processor.preprocess(solidImage(height: 30, width: 56)) }
  // A 1x1 image would be upscaled with resizing on; with it off, a 28x56 image stays as it is.
  let result = try processor.preprocess(solidImage(height: 28, width: 56))
  #expect(result.gridTHW == [[1, 2, 4]])
}

@Test func onlyBicubicResamplingIsImplemented() throws {
  var config = ImageProcessorConfig()
  config.resample = 2
  let processor = QwenImageProcessor(config: config)
  #expect(throws: ProcessorError.unsupportedResample(2)) { try processor.preprocess(solidImage(height: 30, width: 56)) }
  // No resize needed: the filter does not matter.
  _ = try processor.preprocess(solidImage(height: 56, width: 56))
}

@Test func emptyBatchGivesNoRows() throws {
  let result = try QwenImageProcessor().preprocess([RGBImage]())
  #expect(result.pixelValues.shape == [0, 1176])
  #expect(result.gridTHW.isEmpty && result.imageTokenCounts.isEmpty)
}

// MARK: Per-call overrides

/// 300x200 with max_pixels 16*28*28: beta = sqrt(60000 / 12544) = 2.187; 300 / beta / 28 = 4.9 -> 4,
/// 200 / beta / 28 = 3.27 -> 3: 112x84, grid (1, 8, 6), 12 tokens (transformers agrees: grid case
/// override_max_16_tokens). The settings' own max_pixels (9408) gives 112x56.
@Test func perCallOverridesReplaceTheSettings() throws {
  let processor = QwenImageProcessor(minPixels: 3136, maxPixels: 9408)
  let image = solidImage(height: 300, width: 200)
  let overridden = try processor.preprocess([image], minPixels: 3136, maxPixels: 16 * 28 * 28)
  #expect(overridden.gridTHW == [[1, 8, 6]])
  #expect(overridden.imageTokenCounts == [12])
  let plain = try processor.preprocess([image])
  #expect(plain.gridTHW == [[1, 8, 4]])
  #expect(plain.resizedSizes.first?.height == 112 && plain.resizedSizes.first?.width == 56)
}

// MARK: vlmrl preprocess

func temporaryModelDirectory(_ settings: String?) throws -> URL {
  let directory = FileManager.default.temporaryDirectory
    .appendingPathComponent("processor-tests-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  if let settings {
    try Data(settings.utf8).write(to: directory.appendingPathComponent("preprocessor_config.json"))
  }
  return directory
}

/// Pulls "name value" numbers out of a stats line.
func statistic(_ name: String, in line: String) -> Double? {
  let parts = line.split(separator: " ")
  guard let index = parts.firstIndex(of: Substring(name)), index + 1 < parts.count else { return nil }
  return Double(parts[index + 1])
}

@Test func preprocessCommandReportsSizesGridAndStatistics() throws {
  let directory = try temporaryModelDirectory(
    #"{"image_processor_type": "Qwen2VLImageProcessor", "min_pixels": 3136, "max_pixels": 9408}"#)
  defer { try? FileManager.default.removeItem(at: directory) }
  let cases = Array(Golden.pixelCases.prefix(3))
  try #require(cases.count == 3)
  let urls = cases.map { Golden.directory.appendingPathComponent($0.name + ".png") }
  let lines = try PreprocessCommand.run(modelDirectory: directory, images: urls)
  try #require(lines.count == 1 + 2 * cases.count + 1)
  #expect(lines[0].contains("preprocessor_config.json") && lines[0].contains("max_pixels 9408"))
  for (index, fixture) in cases.enumerated() {
    let header = lines[1 + 2 * index], stats = lines[2 + 2 * index]
    #expect(header.contains(urls[index].path))
    #expect(header.contains("original \(fixture.height)x\(fixture.width) (HxW)"))
    #expect(header.contains("resized \(fixture.resized_height)x\(fixture.resized_width)"))
    #expect(header.contains("image_grid_thw \(fixture.grid_thw)"))
    #expect(header.contains("\(fixture.tokens) image tokens"))
    #expect(stats.contains("[\(fixture.pixel_values_shape[0]), 1176]"))
    for (name, value) in [("min", fixture.stats.min), ("max", fixture.stats.max),
                          ("mean", fixture.stats.mean), ("std", fixture.stats.std)] {
      let ours = try #require(statistic(name, in: stats), "\(name) in \(stats)")
      #expect(abs(ours - value) < 1e-4, "\(fixture.name) \(name): \(ours) vs \(value)")
    }
  }
  let total = cases.map(\.tokens).reduce(0, +)
  #expect(lines.last?.contains("\(total) image tokens") == true)
}

@Test func preprocessCommandWithoutSettingsUsesClassDefaults() throws {
  let directory = try temporaryModelDirectory(nil)
  defer { try? FileManager.default.removeItem(at: directory) }
  let url = Golden.directory.appendingPathComponent("large_300x200.png")
  let lines = try PreprocessCommand.run(modelDirectory: directory, images: [url])
  #expect(lines.first?.contains("class defaults") == true)
  // 300x200 fits the defaults (3136 ... 1003520): round(300/28) = 11 -> 308, round(200/28) = 7 -> 196.
  #expect(lines.count > 1 && lines[1].contains("resized 308x196") && lines[1].contains("image_grid_thw [1, 22, 14]"))
}

@Test func preprocessCommandNamesAnUnreadableImage() throws {
  let directory = try temporaryModelDirectory(nil)
  defer { try? FileManager.default.removeItem(at: directory) }
  let missing = directory.appendingPathComponent("no-such-image.png")
  do {
    _ = try PreprocessCommand.run(modelDirectory: directory, images: [missing])
    Issue.record("expected an error")
  } catch {
    #expect("\(error)".contains("no-such-image.png"))
  }
}

/// transformers 5 saves the settings inside `processor_config.json`, limits as `size` pixel counts.
@Test func preprocessCommandReadsProcessorConfigOfTransformers5() throws {
  let directory = try temporaryModelDirectory(nil)
  defer { try? FileManager.default.removeItem(at: directory) }
  let settings = #"{"image_processor": {"size": {"shortest_edge": 3136, "longest_edge": 12544}}}"#
  try Data(settings.utf8).write(to: directory.appendingPathComponent("processor_config.json"))
  let url = Golden.directory.appendingPathComponent("large_300x200.png")
  let lines = try PreprocessCommand.run(modelDirectory: directory, images: [url])
  #expect(lines.first?.contains("processor_config.json") == true)
  #expect(lines.first?.contains("max_pixels 12544") == true)
  // Same as transformers' grid case override_max_16_tokens: 112x84, grid (1, 8, 6).
  #expect(lines.count > 1 && lines[1].contains("image_grid_thw [1, 8, 6]") && lines[1].contains("12 image tokens"))
}
