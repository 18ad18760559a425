import Common
import Foundation

/// Qwen2-VL image processor settings (Qwen2.5-VL uses the same processor).
///
/// Read from `preprocessor_config.json`, or from the `image_processor` object of
/// `processor_config.json` as transformers 5.x saves it. Pixel limits come in two spellings:
/// `size: {shortest_edge, longest_edge}` (pixel counts, not edge lengths) and `min_pixels` /
/// `max_pixels`; as in transformers' `Qwen2VLImageProcessor.__init__`, explicit `min_pixels` /
/// `max_pixels` override `size`, and the class defaults (3136, 1003520) fill what neither gives.
public struct ImageProcessorConfig: Sendable, Codable, Equatable {
  public static let defaultMinPixels = 56 * 56
  public static let defaultMaxPixels = 28 * 28 * 1280
  /// OPENAI_CLIP_MEAN / OPENAI_CLIP_STD.
  public static let clipMean = [0.48145466, 0.4578275, 0.40821073]
  public static let clipStd = [0.26862954, 0.26130258, 0.27577711]

  public var minPixels: Int
  public var maxPixels: Int
  public var patchSize: Int
  public var temporalPatchSize: Int
  public var mergeSize: Int
  public var imageMean: [Double]
  public var imageStd: [Double]
  public var rescaleFactor: Double
  /// PIL resampling filter id (3 = bicubic).
  public var resample: Int
  public var doResize: Bool
  public var doRescale: Bool
  public var doNormalize: Bool
  public var doConvertRGB: Bool
  /// `image_processor_type`, e.g. "Qwen2VLImageProcessor".
  public var imageProcessorType: String?

  /// The class defaults of transformers' Qwen2VLImageProcessor.
  public init() {
    minPixels = Self.defaultMinPixels
    maxPixels = Self.defaultMaxPixels
    patchSize = 14
    temporalPatchSize = 2
    mergeSize = 2
    imageMean = Self.clipMean
    imageStd = Self.clipStd
    rescaleFactor = 1.0 / 255.0
    resample = 3
    doResize = true
    doRescale = true
    doNormalize = true
    doConvertRGB = true
    imageProcessorType = nil
  }

  /// Reads `preprocessor_config.json` (or a `processor_config.json` holding `image_processor`).
  public init(contentsOf url: URL) throws {
    let fields = try JSONFields.load(url)
    if let nested = try fields.object("image_processor") {
      try self.init(fields: nested)
    } else {
      try self.init(fields: fields)
    }
  }

  init(fields: JSONFields) throws {
    self.init()
    if let size = try fields.object("size") {
      minPixels = try size.int("shortest_edge") ?? size.int("min_pixels") ?? minPixels
      maxPixels = try size.int("longest_edge") ?? size.int("max_pixels") ?? maxPixels
    }
    minPixels = try fields.int("min_pixels") ?? minPixels
    maxPixels = try fields.int("max_pixels") ?? maxPixels
    patchSize = try fields.int("patch_size") ?? patchSize
    temporalPatchSize = try fields.int("temporal_patch_size") ?? temporalPatchSize
    mergeSize = try fields.int("merge_size") ?? mergeSize
    imageMean = try fields.doubles("image_mean") ?? imageMean
    imageStd = try fields.doubles("image_std") ?? imageStd
    rescaleFactor = try fields.double("rescale_factor") ?? rescaleFactor
    resample = try fields.int("resample") ?? resample
    doResize = try fields.bool("do_resize") ?? doResize
    doRescale = try fields.bool("do_rescale") ?? doRescale
    doNormalize = try fields.bool("do_normalize") ?? doNormalize
    doConvertRGB = try fields.bool("do_convert_rgb") ?? doConvertRGB
    imageProcessorType = try fields.string("image_processor_type")
    try validate(fields)
  }

  private func validate(_ fields: JSONFields) throws {
    func fail(_ field: String, _ reason: String) -> ModelConfigError {
      .invalidValue(file: fields.file, field: fields.fieldPath(field), reason: reason)
    }
    guard patchSize > 0, temporalPatchSize > 0, mergeSize > 0 else {
      throw fail("patch_size", "patch_size, temporal_patch_size and merge_size must be positive")
    }
    guard minPixels > 0, maxPixels >= minPixels else {
      throw fail("max_pixels", "need 0 < min_pixels (\(minPixels)) <= max_pixels (\(maxPixels))")
    }
    guard imageMean.count == 3, imageStd.count == 3, imageStd.allSatisfy({ $0 != 0 }) else {
      throw fail("image_std", "image_mean and image_std must have 3 entries, std non-zero")
    }
  }

  /// Pixels per LLM token side (patch size times merge size; 28).
  public var factor: Int { patchSize * mergeSize }

  /// The size an image is resized to, with these settings.
  public func resizedSize(height: Int, width: Int) throws -> (height: Int, width: Int) {
    try smartResize(height: height, width: width, factor: factor, minPixels: minPixels, maxPixels: maxPixels)
  }

  /// `(grid_t, grid_h, grid_w)` in patches for one image.
  public func gridTHW(height: Int, width: Int) throws -> (t: Int, h: Int, w: Int) {
    let size = try resizedSize(height: height, width: width)
    return (1, size.height / patchSize, size.width / patchSize)
  }

  /// Number of `<|image_pad|>` tokens for one image: grid_t * grid_h * grid_w / merge_size^2.
  public func imageTokenCount(height: Int, width: Int) throws -> Int {
    let grid = try gridTHW(height: height, width: width)
    return grid.t * grid.h * grid.w / (mergeSize * mergeSize)
  }
}
