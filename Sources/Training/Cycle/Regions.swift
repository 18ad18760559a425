import Common
import Foundation
import Imaging
import Rewards

/// A region of an image in original pixels: its box, and its mask when the data has one (COCO RLE
/// in `mask_rle`, one object or a list whose union is the region). Box-only data (`bbox`) has no mask.
struct Region: Sendable {
  var box: Box
  var mask: RLEMask?

  /// The truth region of a record's reward fields; nil when it has none (or an empty mask).
  init?(fields: [String: JSONValue]) {
    if let value = fields["mask_rle"] {
      let parts = value.arrayValue ?? [value]
      var merged: RLEMask?
      for part in parts {
        guard let mask = RLEMask(json: part) else { return nil }
        if let current = merged {
          guard current.height == mask.height, current.width == mask.width else { return nil }
          merged = RLEMask.union(current, mask)
        } else {
          merged = mask
        }
      }
      guard let mask = merged, let box = Self.bounds(of: mask) else { return nil }
      self.box = box
      self.mask = mask
      return
    }
    guard let numbers = (fields["bbox"] ?? fields["solution"])?.arrayValue?.compactMap(\.doubleValue),
      let box = Box(numbers: numbers), box.area > 0
    else { return nil }
    self.box = box
    mask = nil
  }

  init(box: Box, mask: RLEMask? = nil) {
    self.box = box
    self.mask = mask
  }

  /// The tight box of a mask's pixels `[x1, y1, x2, y2)` (the box covers whole pixels); nil when empty.
  static func bounds(of mask: RLEMask) -> Box? {
    var minX = Int.max, minY = Int.max, maxX = -1, maxY = -1
    var index = 0
    for (run, count) in mask.counts.enumerated() {
      if run % 2 == 1, count > 0 {
        // Column-major: index = x * height + y. A run may span several columns.
        let first = index, last = index + count - 1
        let firstX = first / mask.height, lastX = last / mask.height
        minX = min(minX, firstX)
        maxX = max(maxX, lastX)
        if firstX == lastX {
          minY = min(minY, first % mask.height)
          maxY = max(maxY, last % mask.height)
        } else {
          minY = 0
          maxY = mask.height - 1
        }
      }
      index += count
    }
    guard maxX >= 0 else { return nil }
    return Box(Double(minX), Double(minY), Double(maxX + 1), Double(maxY + 1))
  }

  /// Whether the pixel at (x, y) belongs to the region (the mask, else the box by pixel centres).
  func contains(x: Int, y: Int, maskPixels: [Bool]?) -> Bool {
    if let mask, let maskPixels {
      guard x >= 0, y >= 0, x < mask.width, y < mask.height else { return false }
      return maskPixels[x * mask.height + y]
    }
    let cx = Double(x) + 0.5, cy = Double(y) + 0.5
    return cx >= box.x1 && cx < box.x2 && cy >= box.y1 && cy < box.y2
  }

  /// IoU of a predicted box (original pixels) with this region: with a mask, of the box rasterised
  /// at pixel centres against the mask; else box against box.
  func iou(predicted: Box) -> Double {
    guard let mask else { return BoxMath.iou(predicted, box) }
    return RLEMask.iou(Self.rasterised(predicted, height: mask.height, width: mask.width), mask)
  }

  /// A box's pixels (by pixel centres) as column-major runs, built directly: per covered column one
  /// background run above and one foreground run of the box's rows (no pixel array).
  static func rasterised(_ box: Box, height: Int, width: Int) -> RLEMask {
    let x0 = max(0, Int((box.x1 - 0.5).rounded(.up))), x1 = min(width, Int((box.x2 - 0.5).rounded(.up)))
    let y0 = max(0, Int((box.y1 - 0.5).rounded(.up))), y1 = min(height, Int((box.y2 - 0.5).rounded(.up)))
    guard x0 < x1, y0 < y1 else { return RLEMask(height: height, width: width, counts: [height * width]) }
    var counts: [Int] = []
    var background = x0 * height + y0  // columns before the box, then the first column's rows above it
    for _ in x0..<x1 {
      counts += [background, y1 - y0]
      background = (height - y1) + y0  // below the box in this column, above it in the next
    }
    counts.append((height - y1) + (width - x1) * height)
    return RLEMask(height: height, width: width, counts: counts)
  }

  /// The image with the region's outline drawn in red (mask contour, or the box's border), a line
  /// of about 1/150 of the shorter side (at least 1 pixel), inside the region.
  func outlined(_ image: RGBImage) -> RGBImage {
    var result = image
    let thickness = max(1, min(image.width, image.height) / 150)
    let maskPixels = mask.flatMap { $0.height == image.height && $0.width == image.width ? $0.decode() : nil }
    let region = maskPixels == nil ? Region(box: box) : self
    let xs = max(0, Int(box.x1) - 1)..<min(image.width, Int(box.x2.rounded(.up)) + 1)
    let ys = max(0, Int(box.y1) - 1)..<min(image.height, Int(box.y2.rounded(.up)) + 1)
    guard !xs.isEmpty, !ys.isEmpty else { return result }
    for y in ys {
      for x in xs where region.contains(x: x, y: y, maskPixels: maskPixels) {
        let edge = [(thickness, 0), (-thickness, 0), (0, thickness), (0, -thickness)].contains { dx, dy in
          !region.contains(x: x + dx, y: y + dy, maskPixels: maskPixels)
        }
        guard edge else { continue }
        let offset = (y * image.width + x) * 3
        result.pixels[offset] = 255
        result.pixels[offset + 1] = 0
        result.pixels[offset + 2] = 0
      }
    }
    return result
  }

  /// A box as the model reads and writes it: `[x1, y1, x2, y2]`, whole numbers.
  static func text(_ box: Box) -> String {
    "[\([box.x1, box.y1, box.x2, box.y2].map { String(Int($0.rounded())) }.joined(separator: ", "))]"
  }
}
