// Polygon -> RLE, following pycocotools' rleFrPoly (maskApi.c) so masks match COCO tooling.
import Foundation

extension RLEMask {
  /// Rasterizes one polygon `[x0, y0, x1, y1, ...]` (pixel coordinates) like pycocotools: boundary
  /// points upsampled 5x, one crossing per column kept, runs between crossings.
  public init(height: Int, width: Int, polygon: [Double]) {
    let vertexCount = polygon.count / 2
    guard vertexCount > 0, height > 0, width > 0, polygon.allSatisfy({ $0.isFinite && abs($0) < 1e7 }) else {
      self.init(height: height, width: width, counts: [max(0, height * width)])
      return
    }
    let scale = 5.0
    var xs = (0..<vertexCount).map { Int(scale * polygon[2 * $0] + 0.5) }
    var ys = (0..<vertexCount).map { Int(scale * polygon[2 * $0 + 1] + 0.5) }
    xs.append(xs[0])
    ys.append(ys[0])
    let (us, vs) = Self.denseBoundary(xs: xs, ys: ys)
    var starts: [Int] = []
    for j in 1..<max(1, us.count) where us[j] != us[j - 1] {
      var xd = Double(us[j] < us[j - 1] ? us[j] : us[j] - 1)
      xd = (xd + 0.5) / scale - 0.5
      if floor(xd) != xd || xd < 0 || xd > Double(width - 1) { continue }
      var yd = Double(vs[j] < vs[j - 1] ? vs[j] : vs[j - 1])
      yd = (yd + 0.5) / scale - 0.5
      yd = ceil(min(Double(height), max(0, yd)))
      starts.append(Int(xd) * height + Int(yd))
    }
    starts.append(height * width)
    starts.sort()
    var previous = 0
    var deltas: [Int] = []
    for value in starts {
      deltas.append(value - previous)
      previous = value
    }
    // Zero-length runs merge their neighbours (as maskApi does).
    var counts: [Int] = [deltas[0]]
    var index = 1
    while index < deltas.count {
      if deltas[index] > 0 {
        counts.append(deltas[index])
        index += 1
      } else {
        index += 1
        if index < deltas.count {
          counts[counts.count - 1] += deltas[index]
          index += 1
        }
      }
    }
    self.init(height: height, width: width, counts: counts)
  }

  /// The number of outline points `init(height:width:polygon:)` generates (each edge's longer side in
  /// 5x upsampled pixels, plus one); infinity for non-finite coordinates.
  public static func outlinePoints(_ polygon: [Double]) -> Double {
    let vertexCount = polygon.count / 2
    guard vertexCount > 0 else { return 0 }
    var total = 0.0
    for j in 0..<vertexCount {
      let next = (j + 1) % vertexCount
      let dx = abs(polygon[2 * next] - polygon[2 * j]) * 5
      let dy = abs(polygon[2 * next + 1] - polygon[2 * j + 1]) * 5
      total += max(dx, dy) + 2
    }
    return total.isFinite ? total : .infinity
  }

  /// The union of several polygons (COCO `segmentation` lists).
  public init(height: Int, width: Int, polygons: [[Double]]) {
    var mask = RLEMask(height: height, width: width, counts: [max(0, height * width)])
    for polygon in polygons { mask = RLEMask.union(mask, RLEMask(height: height, width: width, polygon: polygon)) }
    self = mask
  }

  /// Integer points along every edge (Bresenham-like with rounding, as maskApi).
  private static func denseBoundary(xs: [Int], ys: [Int]) -> ([Int], [Int]) {
    var us: [Int] = []
    var vs: [Int] = []
    for j in 0..<(xs.count - 1) {
      var xs0 = xs[j], xe = xs[j + 1], ys0 = ys[j], ye = ys[j + 1]
      let dx = abs(xe - xs0), dy = abs(ys0 - ye)
      let flip = (dx >= dy && xs0 > xe) || (dx < dy && ys0 > ye)
      if flip {
        swap(&xs0, &xe)
        swap(&ys0, &ye)
      }
      let slope = dx >= dy ? Double(ye - ys0) / Double(max(dx, 1)) : Double(xe - xs0) / Double(max(dy, 1))
      if dx >= dy {
        for d in 0...dx {
          let t = flip ? dx - d : d
          us.append(t + xs0)
          vs.append(Int(Double(ys0) + slope * Double(t) + 0.5))
        }
      } else {
        for d in 0...dy {
          let t = flip ? dy - d : d
          vs.append(t + ys0)
          us.append(Int(Double(xs0) + slope * Double(t) + 0.5))
        }
      }
    }
    return (us, vs)
  }
}
