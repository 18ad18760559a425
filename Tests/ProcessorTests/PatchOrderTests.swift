import Foundation
import Imaging
import ModelConfig
import Testing
import Torch

@testable import Processor

/// An image whose pixels encode their coordinates: R = x, G = y, B = (5x + 3y) mod 256.
func coordinateImage(height: Int, width: Int) -> RGBImage {
  var pixels: [UInt8] = []
  pixels.reserveCapacity(height * width * 3)
  for y in 0..<height {
    for x in 0..<width {
      pixels += [UInt8(x % 256), UInt8(y % 256), UInt8((5 * x + 3 * y) % 256)]
    }
  }
  return RGBImage(width: width, height: height, pixels: pixels)
}

/// Settings with rescale and normalization off, so pixel_values are the raw uint8 values.
func rawProcessor(patch: Int, temporal: Int, merge: Int) -> QwenImageProcessor {
  var config = ImageProcessorConfig()
  config.patchSize = patch
  config.temporalPatchSize = temporal
  config.mergeSize = merge
  config.minPixels = 1
  config.maxPixels = 1 << 30
  config.doRescale = false
  config.doNormalize = false
  return QwenImageProcessor(config: config)
}

/// docs/qwen-vl.md section 2.5, written out element by element: row = ((bh * mw + bw) * m + i) * m + j,
/// col = (c * T + t) * p² + py * p + px, value = P[t][c, (bh m + i) p + py, (bw m + j) p + px].
@Test(arguments: [(14, 2, 2, 56, 112), (4, 3, 3, 24, 36)])
func patchOrderFollowsMergeWindows(_ setting: (Int, Int, Int, Int, Int)) throws {
  let (patch, temporal, merge, height, width) = setting
  let image = coordinateImage(height: height, width: width)
  let result = try rawProcessor(patch: patch, temporal: temporal, merge: merge).preprocess([image])
  let gridH = height / patch, gridW = width / patch
  let rowLength = 3 * temporal * patch * patch
  #expect(result.gridTHW == [[1, gridH, gridW]])
  #expect(result.resizedSizes.first?.height == height && result.resizedSizes.first?.width == width)
  #expect(result.pixelValues.shape == [gridH * gridW, rowLength])
  let values = result.pixelValues.floats()
  let mergedW = gridW / merge
  var mismatches = 0
  for bh in 0..<(gridH / merge) {
    for bw in 0..<mergedW {
      for i in 0..<merge {
        for j in 0..<merge {
          let row = ((bh * mergedW + bw) * merge + i) * merge + j
          for c in 0..<3 {
            for t in 0..<temporal {
              for py in 0..<patch {
                for px in 0..<patch {
                  let col = (c * temporal + t) * patch * patch + py * patch + px
                  let y = (bh * merge + i) * patch + py, x = (bw * merge + j) * patch + px
                  let expected = image.pixels[(y * width + x) * 3 + c]
                  if values[row * rowLength + col] != Float(expected) { mismatches += 1 }
                }
              }
            }
          }
        }
      }
    }
  }
  #expect(mismatches == 0)
}

/// The first four rows of a Qwen layout are one merge window: patches (0,0), (0,1), (1,0), (1,1).
@Test func firstMergeWindowHoldsTheTopLeftTwoByTwoPatches() throws {
  let image = coordinateImage(height: 56, width: 84)
  let values = try rawProcessor(patch: 14, temporal: 2, merge: 2).preprocess([image]).pixelValues
  // Column 0 is channel R (= x), frame 0, pixel (0, 0) of the patch; column 392 is G (= y).
  let topLeftX = values.select(1, 0).floats()
  let topLeftY = values.select(1, 392).floats()
  #expect(Array(topLeftX.prefix(8)) == [0, 14, 0, 14, 28, 42, 28, 42])
  #expect(Array(topLeftY.prefix(8)) == [0, 0, 14, 14, 0, 0, 14, 14])
  // Second merged row starts after mw = 3 windows (12 rows): patch (2, 0).
  #expect(topLeftX[12] == 0 && topLeftY[12] == 28)
}

/// A still image is duplicated into both temporal slots: each channel's second 196 columns
/// repeat its first 196, also after normalization.
@Test func stillImageFillsEveryTemporalSlot() throws {
  let values = try QwenImageProcessor(minPixels: 3136, maxPixels: 9408)
    .preprocess(coordinateImage(height: 56, width: 56)).pixelValues
  for channel in 0..<3 {
    let first = values.narrow(1, start: channel * 392, length: 196)
    let second = values.narrow(1, start: channel * 392 + 196, length: 196)
    #expect(first.maxAbsDifference(second) == 0)
  }
}

/// Hand-computed normalization: value v in channel c becomes (v - 255 mean_c) / (255 std_c).
@Test func normalizationUsesClipMeanAndStd() throws {
  let pixels = [UInt8](repeating: 0, count: 56 * 56 * 3).enumerated().map { UInt8([0, 128, 255][$0.offset % 3]) }
  let image = RGBImage(width: 56, height: 56, pixels: pixels)
  let values = try QwenImageProcessor(minPixels: 3136, maxPixels: 9408).preprocess(image).pixelValues
  // (0 - 122.770938) / 68.500533; (128 - 116.746013) / 66.632158; (255 - 104.093736) / 70.323163.
  let expected: [Float] = [-1.7922626, 0.16889571, 2.1458969]
  for channel in 0..<3 {
    let column = values.select(1, channel * 392 + 5).floats()
    #expect(column.allSatisfy { abs($0 - expected[channel]) < 1e-5 }, "channel \(channel): \(column[0])")
  }
}
