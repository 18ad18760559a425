import Foundation

/// The target size of Qwen2-VL's image processor, matching transformers' `smart_resize` exactly.
///
/// Both sides become multiples of `factor`, the pixel count lands in [minPixels, maxPixels] when
/// possible, and the aspect ratio is kept as closely as the grid allows. The arithmetic is IEEE
/// double as in Python: `round` is banker's rounding (70 / 28 = 2.5 -> 2), and the divisions keep
/// Python's order (`height / beta / factor`). After the ceil branch the result may exceed
/// maxPixels for extreme aspect ratios; transformers does not clamp again, and neither does this.
///
/// Throws for an aspect ratio over 200 (transformers' guard) and for a side below 1 pixel.
public func smartResize(
  height: Int, width: Int, factor: Int = 28, minPixels: Int = 56 * 56, maxPixels: Int = 28 * 28 * 1280
) throws -> (height: Int, width: Int) {
  guard height > 0, width > 0 else {
    throw ModelConfigError.invalidImageSize(height: height, width: width, reason: "sides must be positive")
  }
  let h = Double(height)
  let w = Double(width)
  let f = Double(factor)
  let ratio = max(h, w) / min(h, w)
  guard ratio <= 200 else {
    throw ModelConfigError.invalidImageSize(
      height: height, width: width, reason: "absolute aspect ratio must be smaller than 200, got \(ratio)")
  }
  var newHeight = (h / f).rounded(.toNearestOrEven) * f
  var newWidth = (w / f).rounded(.toNearestOrEven) * f
  if newHeight * newWidth > Double(maxPixels) {
    let beta = ((h * w) / Double(maxPixels)).squareRoot()
    newHeight = max(f, (h / beta / f).rounded(.down) * f)
    newWidth = max(f, (w / beta / f).rounded(.down) * f)
  } else if newHeight * newWidth < Double(minPixels) {
    let beta = (Double(minPixels) / (h * w)).squareRoot()
    newHeight = (h * beta / f).rounded(.up) * f
    newWidth = (w * beta / f).rounded(.up) * f
  }
  return (Int(newHeight), Int(newWidth))
}

/// Number of `<|image_pad|>` tokens for an image of this size: grid_t * grid_h * grid_w / merge^2,
/// with grid_t = 1 for a still image (two identical frames make one temporal patch).
public func imageTokenCount(
  height: Int, width: Int, patchSize: Int = 14, mergeSize: Int = 2,
  minPixels: Int = 56 * 56, maxPixels: Int = 28 * 28 * 1280
) throws -> Int {
  let size = try smartResize(
    height: height, width: width, factor: patchSize * mergeSize, minPixels: minPixels, maxPixels: maxPixels)
  let gridH = size.height / patchSize
  let gridW = size.width / patchSize
  return 1 * gridH * gridW / (mergeSize * mergeSize)
}
