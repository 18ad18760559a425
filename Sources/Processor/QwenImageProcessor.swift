import Foundation
import Imaging
import ModelConfig
import Torch

/// The output of `QwenImageProcessor.preprocess`: what the vision tower and the prompt builder need.
public struct ProcessedImages: Sendable {
  /// float32 `[Σ patches, channels * temporalPatchSize * patchSize²]` (`[N, 1176]` for Qwen), the
  /// images' patches concatenated in input order, on the processor's device.
  public let pixelValues: Tensor
  /// `image_grid_thw`: per image `[t, h, w]` in patches (not merged tokens).
  public let gridTHW: [[Int]]
  /// Per image, the size after `smart_resize`.
  public let resizedSizes: [(height: Int, width: Int)]
  /// Per image, the number of `<|image_pad|>` tokens: `t * h * w / mergeSize²`.
  public let imageTokenCounts: [Int]

  /// Rows of `pixelValues` belonging to each image (`t * h * w`).
  public var patchCounts: [Int] { gridTHW.map { $0.reduce(1, *) } }
}

/// Errors about images or settings handed to the processor. Messages name the image.
public enum ProcessorError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The image cannot be processed (zero-sized, aspect ratio over 200, size not a multiple of the
  /// factor when resizing is off).
  case invalidImage(name: String, height: Int, width: Int, reason: String)
  /// `minPixels` / `maxPixels` (settings or per-call overrides) are not `0 < min <= max`.
  case invalidPixelLimits(minPixels: Int, maxPixels: Int)
  /// The settings ask for a resampling filter other than bicubic (PIL id 3).
  case unsupportedResample(Int)
  /// `names` was given with a different count than `images`.
  case nameCountMismatch(images: Int, names: Int)

  public var description: String {
    switch self {
    case .invalidImage(let name, let height, let width, let reason):
      return "\(name) (height \(height), width \(width)): \(reason)"
    case .invalidPixelLimits(let minPixels, let maxPixels):
      return "invalid pixel limits: need 0 < min_pixels (\(minPixels)) <= max_pixels (\(maxPixels))"
    case .unsupportedResample(let value):
      return "resample \(value) is not supported; only bicubic (3) is implemented, as Qwen checkpoints use"
    case .nameCountMismatch(let images, let names):
      return "\(images) images but \(names) names"
    }
  }
}

/// The arithmetic of the antialiased bicubic resize. torchvision picks it by device: uint8 tensors
/// go to the kernel as uint8 on the CPU and through float32 on CUDA.
public enum ResizeArithmetic: Sendable, Equatable {
  /// libtorch's uint8 kernel: fixed-point weights, each pass rounded and clamped to uint8 (like
  /// Pillow). CPU only; a CUDA processor always uses `.float32`.
  case uint8
  /// float32 kernel, then clamp to [0, 255], round half to even, cast to uint8.
  case float32
}

/// Qwen2-VL / Qwen2.5-VL image preprocessing, matching transformers' fast (torchvision) processor,
/// `Qwen2VLImageProcessorFast` (called `Qwen2VLImageProcessor` from transformers 5):
/// `smart_resize`, antialiased bicubic resize, fused rescale + normalize, duplication of the image to
/// `temporalPatchSize` frames, and patches in the merge-window order of docs/qwen-vl.md section 2.5.
///
/// On the CPU the resize runs libtorch's uint8 antialiased bicubic kernel, as torchvision does
/// for uint8 CPU tensors (rounding and clamping to uint8 between the horizontal and vertical passes).
/// On a CUDA device it takes torchvision's CUDA path: float32 resize, clamp to [0, 255], round,
/// back to uint8. The two differ near sharp edges (up to 13 levels on the test images; see
/// docs/processor.md). `resizeArithmetic` chooses explicitly.
public struct QwenImageProcessor: Sendable {
  /// Pixel limits, patch sizes, mean / std and flags (from `preprocessor_config.json`).
  public var config: ImageProcessorConfig
  /// Where the resize, normalization and `pixelValues` live.
  public var device: Device
  /// How the resize computes; by default what torchvision does on `device`.
  public var resizeArithmetic: ResizeArithmetic

  /// PIL's id for bicubic resampling, the only filter implemented.
  public static let bicubic = 3

  public init(config: ImageProcessorConfig = ImageProcessorConfig(), device: Device = .cpu) {
    self.config = config
    self.device = device
    resizeArithmetic = device.isCUDA ? .float32 : .uint8
  }

  /// Explicit settings; the rest are the checkpoints' values (CLIP mean / std, rescale 1/255).
  public init(
    minPixels: Int, maxPixels: Int, patchSize: Int = 14, temporalPatchSize: Int = 2, mergeSize: Int = 2,
    device: Device = .cpu
  ) {
    var config = ImageProcessorConfig()
    config.minPixels = minPixels
    config.maxPixels = maxPixels
    config.patchSize = patchSize
    config.temporalPatchSize = temporalPatchSize
    config.mergeSize = mergeSize
    self.init(config: config, device: device)
  }

  /// Reads `preprocessor_config.json` (or `processor_config.json` with an `image_processor` object).
  public init(contentsOf url: URL, device: Device = .cpu) throws {
    self.init(config: try ImageProcessorConfig(contentsOf: url), device: device)
  }

  // MARK: Sizes

  /// The size `preprocess` resizes an image of this size to (`smart_resize`, or the size itself
  /// when `do_resize` is off). `minPixels` / `maxPixels` override the settings for this call.
  public func resizedSize(
    height: Int, width: Int, minPixels: Int? = nil, maxPixels: Int? = nil, name: String = "image"
  ) throws -> (height: Int, width: Int) {
    let limits = try pixelLimits(minPixels: minPixels, maxPixels: maxPixels)
    let factor = config.patchSize * config.mergeSize
    guard height > 0, width > 0 else {
      throw ProcessorError.invalidImage(name: name, height: height, width: width, reason: "the image is empty")
    }
    guard config.doResize else {
      guard height % factor == 0, width % factor == 0 else {
        throw ProcessorError.invalidImage(
          name: name, height: height, width: width,
          reason: "do_resize is off, so both sides must be multiples of \(factor)")
      }
      return (height, width)
    }
    do {
      return try smartResize(
        height: height, width: width, factor: factor, minPixels: limits.min, maxPixels: limits.max)
    } catch let ModelConfigError.invalidImageSize(_, _, reason) {
      throw ProcessorError.invalidImage(name: name, height: height, width: width, reason: reason)
    }
  }

  /// `image_grid_thw` for one still image: `[1, resizedHeight / patch, resizedWidth / patch]`.
  public func gridTHW(height: Int, width: Int, minPixels: Int? = nil, maxPixels: Int? = nil) throws -> [Int] {
    let size = try resizedSize(height: height, width: width, minPixels: minPixels, maxPixels: maxPixels)
    return [1, size.height / config.patchSize, size.width / config.patchSize]
  }

  /// `<|image_pad|>` tokens for one image of this size.
  public func imageTokenCount(height: Int, width: Int, minPixels: Int? = nil, maxPixels: Int? = nil) throws -> Int {
    let grid = try gridTHW(height: height, width: width, minPixels: minPixels, maxPixels: maxPixels)
    return grid.reduce(1, *) / (config.mergeSize * config.mergeSize)
  }

  private func pixelLimits(minPixels: Int?, maxPixels: Int?) throws -> (min: Int, max: Int) {
    let low = minPixels ?? config.minPixels
    let high = maxPixels ?? config.maxPixels
    guard low > 0, high >= low else { throw ProcessorError.invalidPixelLimits(minPixels: low, maxPixels: high) }
    return (low, high)
  }

  // MARK: Preprocess

  /// Processes `images` in order. `names` (file paths, record ids) label errors; without them an
  /// image is called "image <index>". `minPixels` / `maxPixels` override the settings for this call,
  /// like transformers' `size={"shortest_edge": ..., "longest_edge": ...}` call argument.
  public func preprocess(
    _ images: [RGBImage], names: [String]? = nil, minPixels: Int? = nil, maxPixels: Int? = nil
  ) throws -> ProcessedImages {
    if let names, names.count != images.count {
      throw ProcessorError.nameCountMismatch(images: images.count, names: names.count)
    }
    _ = try pixelLimits(minPixels: minPixels, maxPixels: maxPixels)
    // Validate every image before any tensor work, so a bad last image costs nothing.
    var sizes: [(height: Int, width: Int)] = []
    for (index, image) in images.enumerated() {
      let name = names?[index] ?? "image \(index)"
      sizes.append(try resizedSize(
        height: image.height, width: image.width, minPixels: minPixels, maxPixels: maxPixels, name: name))
      let needsResize = sizes[index] != (image.height, image.width)
      if needsResize && config.resample != Self.bicubic { throw ProcessorError.unsupportedResample(config.resample) }
    }
    var patches: [Tensor] = []
    var grids: [[Int]] = []
    for (image, size) in zip(images, sizes) {
      let resized = resize(channelsFirst(image), height: size.height, width: size.width)
      patches.append(patchify(normalize(resized)))
      grids.append([1, size.height / config.patchSize, size.width / config.patchSize])
    }
    let rowLength = 3 * config.temporalPatchSize * config.patchSize * config.patchSize
    let pixelValues = patches.isEmpty
      ? Tensor.zeros([0, rowLength]).to(device) : Tensor.cat(patches, dim: 0)
    let mergeArea = config.mergeSize * config.mergeSize
    return ProcessedImages(
      pixelValues: pixelValues, gridTHW: grids, resizedSizes: sizes,
      imageTokenCounts: grids.map { $0.reduce(1, *) / mergeArea })
  }

  /// One image; see `preprocess(_:names:minPixels:maxPixels:)`.
  public func preprocess(
    _ image: RGBImage, name: String = "image 0", minPixels: Int? = nil, maxPixels: Int? = nil
  ) throws -> ProcessedImages {
    try preprocess([image], names: [name], minPixels: minPixels, maxPixels: maxPixels)
  }

  // MARK: Steps

  /// uint8 `[3, H, W]`, contiguous, on `device` (transformers permutes HWC to CHW and calls
  /// `.contiguous()` before resizing).
  func channelsFirst(_ image: RGBImage) -> Tensor {
    let hwc = Tensor(image.pixels, shape: [image.height, image.width, 3])
    return hwc.permute(2, 0, 1).contiguous().to(device)
  }

  /// torchvision `resize(..., BICUBIC, antialias=True)` on a uint8 `[3, H, W]` tensor; the same
  /// size returns the input untouched, as torchvision does.
  func resize(_ image: Tensor, height: Int, width: Int) -> Tensor {
    if image.size(1) == height && image.size(2) == width { return image }
    let batch = image.unsqueeze(0)
    if resizeArithmetic == .uint8 && !device.isCUDA {
      // torchvision hands uint8 to the kernel directly on the CPU (`_do_native_uint8_resize_on_cpu`).
      return F.resizeBicubicAntialiased(batch, height: height, width: width).squeeze(0)
    }
    // torchvision's CUDA path: float resize, clamp (bicubic overshoots), round, cast back.
    let resized = F.resizeBicubicAntialiased(batch.to(.float32), height: height, width: width)
    return resized.clamp(min: 0, max: 255).round().to(.uint8).squeeze(0)
  }

  /// transformers' `rescale_and_normalize` (torchvision backend). With both steps on they are
  /// fused: mean' = float32(mean) * (1 / rescale_factor), std' likewise, then (x - mean') / std'
  /// in float32, exactly the tensors transformers builds.
  func normalize(_ image: Tensor) -> Tensor {
    let pixels = image.to(.float32)
    if config.doNormalize {
      var mean = Tensor(config.imageMean.map(Float.init))
      var std = Tensor(config.imageStd.map(Float.init))
      if config.doRescale {
        mean = mean * (1.0 / config.rescaleFactor)
        std = std * (1.0 / config.rescaleFactor)
      }
      return (pixels - mean.to(device).view(3, 1, 1)) / std.to(device).view(3, 1, 1)
    }
    return config.doRescale ? pixels * config.rescaleFactor : pixels
  }

  /// float `[3, H, W]` -> `[gridH * gridW, 3 * T * p * p]`. Rows go merge window by merge window
  /// (bh, bw), row-major inside each window (i, j); columns are (channel, frame, py, px), the
  /// memory order of the Conv3d patch-embedding kernel (docs/qwen-vl.md section 2.5). The single frame is
  /// repeated `temporalPatchSize` times, as transformers does for a still image.
  func patchify(_ image: Tensor) -> Tensor {
    let patch = config.patchSize, merge = config.mergeSize, frames = config.temporalPatchSize
    let channels = image.size(0)
    let gridH = image.size(1) / patch, gridW = image.size(2) / patch
    let windows = image.reshape([channels, gridH / merge, merge, patch, gridW / merge, merge, patch])
      // (c, bh, i, py, bw, j, px) -> (bh, bw, i, j, c, py, px)
      .permute(1, 4, 2, 5, 0, 3, 6)
    return windows.unsqueeze(5)
      .expand([-1, -1, -1, -1, -1, frames, -1, -1])
      .reshape([gridH * gridW, channels * frames * patch * patch])
  }
}
