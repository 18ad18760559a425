import Foundation
import Imaging
import ModelConfig
import Torch

/// `vlmrl preprocess --model DIR IMAGE...`: how a model folder's image processor sees some images.
/// Prints, per image, the original and resized sizes, `image_grid_thw`, patch and token counts and
/// the statistics of its `pixel_values` rows, then one line for the whole batch.
public enum PreprocessCommand {
  /// The processor settings of a model folder: `preprocessor_config.json`, else the
  /// `image_processor` object of `processor_config.json`, else transformers' class defaults.
  /// Returns the settings and the file they came from (nil for the defaults).
  public static func loadSettings(modelDirectory: URL) throws -> (config: ImageProcessorConfig, file: URL?) {
    for name in ["preprocessor_config.json", "processor_config.json"] {
      let file = modelDirectory.appendingPathComponent(name)
      if FileManager.default.fileExists(atPath: file.path) {
        return (try ImageProcessorConfig(contentsOf: file), file)
      }
    }
    return (ImageProcessorConfig(), nil)
  }

  /// Runs the command and returns its output lines. Decoding errors name the image file;
  /// processor errors name it too.
  public static func run(
    modelDirectory: URL, images: [URL], minPixels: Int? = nil, maxPixels: Int? = nil
  ) throws -> [String] {
    let (config, file) = try loadSettings(modelDirectory: modelDirectory)
    let processor = QwenImageProcessor(config: config)
    var lines = [settingsLine(config, file: file, minPixels: minPixels, maxPixels: maxPixels)]
    let decoded = try images.map { try decodeImage(contentsOf: $0) }
    let result = try processor.preprocess(
      decoded, names: images.map(\.path), minPixels: minPixels, maxPixels: maxPixels)
    var firstRow = 0
    for (index, url) in images.enumerated() {
      let image = decoded[index], size = result.resizedSizes[index], grid = result.gridTHW[index]
      let rows = result.patchCounts[index]
      lines.append(
        "\(url.path): original \(image.height)x\(image.width) (HxW) -> resized \(size.height)x\(size.width), "
          + "image_grid_thw \(grid), \(rows) patches, \(result.imageTokenCounts[index]) image tokens")
      lines.append("  pixel_values " + describe(result.pixelValues.narrow(0, start: firstRow, length: rows)))
      firstRow += rows
    }
    let totalTokens = result.imageTokenCounts.reduce(0, +)
    lines.append(
      "all images: pixel_values \(describe(result.pixelValues)); image_grid_thw \(result.gridTHW); "
        + "\(totalTokens) image tokens")
    return lines
  }

  static func settingsLine(_ config: ImageProcessorConfig, file: URL?, minPixels: Int?, maxPixels: Int?) -> String {
    let source = file?.path ?? "transformers' class defaults (no preprocessor_config.json)"
    var line = "image processor: \(source): min_pixels \(minPixels ?? config.minPixels), "
      + "max_pixels \(maxPixels ?? config.maxPixels), patch_size \(config.patchSize), "
      + "temporal_patch_size \(config.temporalPatchSize), merge_size \(config.mergeSize)"
    if minPixels != nil || maxPixels != nil { line += " (limits overridden)" }
    return line
  }

  /// Shape and min / max / mean / std (float64, Bessel-corrected like `torch.std`) of some rows.
  static func describe(_ values: Tensor) -> String {
    let shape = "[\(values.shape.map(String.init).joined(separator: ", "))]"
    guard values.count > 0 else { return "\(shape) (empty)" }
    let wide = values.to(.float64)
    let std = values.count > 1 ? wide.std().item() : 0
    func format(_ value: Double) -> String { String(format: "%.6f", value) }
    return "\(shape) min \(format(wide.min().item())) max \(format(wide.max().item())) "
      + "mean \(format(wide.mean().item())) std \(format(std))"
  }
}
