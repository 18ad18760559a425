// COCO run-length encoded masks (pycocotools' maskApi.c semantics): column-major runs starting
// with background, the compressed string form, polygon rasterization and IoU on runs.
import Common
import Foundation

/// A binary mask of `height x width` pixels as alternating runs (background first), column-major.
public struct RLEMask: Sendable, Hashable {
  public var height: Int
  public var width: Int
  public var counts: [Int]

  public init(height: Int, width: Int, counts: [Int]) {
    self.height = height
    self.width = width
    self.counts = counts
  }

  /// Number of foreground pixels.
  public var area: Int { stride(from: 1, to: counts.count, by: 2).reduce(0) { $0 + counts[$1] } }

  /// Runs from a column-major pixel array (true = foreground).
  public init(height: Int, width: Int, pixels: [Bool]) {
    var counts: [Int] = []
    var current = false
    var run = 0
    for pixel in pixels {
      if pixel != current {
        counts.append(run)
        run = 0
        current = pixel
      }
      run += 1
    }
    counts.append(run)
    self.init(height: height, width: width, counts: counts)
  }

  /// Column-major pixels (for tests and small masks).
  public func decode() -> [Bool] {
    var pixels: [Bool] = []
    pixels.reserveCapacity(height * width)
    for (index, run) in counts.enumerated() { pixels.append(contentsOf: repeatElement(index % 2 == 1, count: max(0, run))) }
    return pixels
  }

  // MARK: Compressed string (LEB128-like, 5 bits per character, offset 48, deltas after index 2)

  /// pycocotools' `rleToString`.
  public var compressed: String {
    var bytes: [UInt8] = []
    for (index, count) in counts.enumerated() {
      var x = count - (index > 2 ? counts[index - 2] : 0)
      var more = true
      while more {
        var c = x & 0x1f
        x >>= 5
        more = (c & 0x10) != 0 ? x != -1 : x != 0
        if more { c |= 0x20 }
        bytes.append(UInt8(c + 48))
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// pycocotools' `rleFrString`; nil for characters outside the alphabet or absurd values.
  public init?(height: Int, width: Int, compressed: String) {
    var counts: [Int] = []
    var bytes = Array(compressed.utf8)[...]
    while !bytes.isEmpty {
      var x = 0
      var shift = 0
      var more = true
      while more {
        guard let byte = bytes.popFirst(), byte >= 48, byte < 48 + 64, shift < 60 else { return nil }
        let c = Int(byte) - 48
        x |= (c & 0x1f) << shift
        more = (c & 0x20) != 0
        shift += 5
        if !more, (c & 0x10) != 0 { x |= -1 << shift }
      }
      if counts.count > 2 { x += counts[counts.count - 2] }
      counts.append(x)
    }
    self.init(height: height, width: width, counts: counts)
  }

  /// A mask from a COCO RLE object `{"size": [h, w], "counts": "..." | [..]}`; nil when malformed
  /// (negative runs, or runs that do not sum to h*w).
  public init?(json: JSONValue) {
    guard let size = json["size"]?.arrayValue, size.count == 2, let height = size[0].intValue,
      let width = size[1].intValue, height >= 0, width >= 0, height.multipliedReportingOverflow(by: width).overflow == false
    else { return nil }
    if let text = json["counts"]?.stringValue {
      guard let mask = RLEMask(height: height, width: width, compressed: text) else { return nil }
      self = mask
    } else if let list = json["counts"]?.arrayValue {
      let counts = list.compactMap(\.intValue)
      guard counts.count == list.count else { return nil }
      self.init(height: height, width: width, counts: counts)
    } else {
      return nil
    }
    guard counts.allSatisfy({ $0 >= 0 }), counts.reduce(0, { $0 &+ $1 }) == height * width else { return nil }
  }

  public var json: JSONValue {
    .object(["size": .array([.int(height), .int(width)]), "counts": .string(compressed)])
  }

  // MARK: Set operations on runs

  /// Walks both run lists together, calling `body(length, inA, inB)` for each common segment.
  static func walk(_ a: RLEMask, _ b: RLEMask, _ body: (Int, Bool, Bool) -> Void) {
    var ia = 0, ib = 0
    var leftA = a.counts.first ?? 0, leftB = b.counts.first ?? 0
    while ia < a.counts.count, ib < b.counts.count {
      let step = min(leftA, leftB)
      if step > 0 { body(step, ia % 2 == 1, ib % 2 == 1) }
      leftA -= step
      leftB -= step
      while leftA == 0, ia < a.counts.count {
        ia += 1
        leftA = ia < a.counts.count ? a.counts[ia] : 0
      }
      while leftB == 0, ib < b.counts.count {
        ib += 1
        leftB = ib < b.counts.count ? b.counts[ib] : 0
      }
    }
  }

  /// Intersection over union without decoding; two empty masks give 1, different sizes give 0.
  public static func iou(_ a: RLEMask, _ b: RLEMask) -> Double {
    guard a.height == b.height, a.width == b.width else { return 0 }
    var intersection = 0, union = 0
    walk(a, b) { length, inA, inB in
      if inA && inB { intersection += length }
      if inA || inB { union += length }
    }
    return union == 0 ? 1 : Double(intersection) / Double(union)
  }

  /// Pixel-wise union (pycocotools `merge` with intersect = 0).
  public static func union(_ a: RLEMask, _ b: RLEMask) -> RLEMask {
    var counts: [Int] = []
    var current = false
    var run = 0
    walk(a, b) { length, inA, inB in
      if (inA || inB) != current {
        counts.append(run)
        run = 0
        current.toggle()
      }
      run += length
    }
    counts.append(run)
    return RLEMask(height: a.height, width: a.width, counts: counts)
  }
}
