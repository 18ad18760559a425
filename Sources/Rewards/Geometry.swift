// Box overlap and the Gaussian box similarities of GUI-G2 (docs/rewards.md, "Grounding").
import Foundation

public enum BoxMath {
  /// Intersection over union with continuous coordinates. `pixelInclusive` adds the +1 of the
  /// reference implementations (a box [0,0,0,0] covers one pixel). Two identical empty boxes give 1.
  public static func iou(_ a: Box, _ b: Box, pixelInclusive: Bool = false) -> Double {
    let extra = pixelInclusive ? 1.0 : 0.0
    let interWidth = max(0, min(a.x2, b.x2) - max(a.x1, b.x1) + extra)
    let interHeight = max(0, min(a.y2, b.y2) - max(a.y1, b.y1) + extra)
    let intersection = interWidth * interHeight
    let areaA = (a.width + extra) * (a.height + extra)
    let areaB = (b.width + extra) * (b.height + extra)
    let union = areaA + areaB - intersection
    guard union > 0, union.isFinite else { return a == b ? 1 : 0 }
    return min(1, max(0, intersection / union))
  }

  /// GUI-G2's sigma (`alpha * size`), floored at 0.5 pixel so zero-size boxes stay finite.
  static func sigmas(_ box: Box, alpha: Double) -> (Double, Double) {
    (max(alpha * box.width, 0.5), max(alpha * box.height, 0.5))
  }

  /// `exp(-0.5 ((px-gx)^2/sx^2 + (py-gy)^2/sy^2))`: the predicted centre under the ground truth's
  /// Gaussian.
  public static func gaussianPoint(predicted: Box, truth: Box, alpha: Double = 0.5) -> Double {
    let (sx, sy) = sigmas(truth, alpha: alpha)
    let dx = (predicted.centerX - truth.centerX) / sx
    let dy = (predicted.centerY - truth.centerY) / sy
    let value = exp(-0.5 * (dx * dx + dy * dy))
    return value.isFinite ? value : 0
  }

  /// Bhattacharyya coefficient `exp(-D)` of the two boxes' diagonal Gaussians, with
  /// `D = 1/8 dmu^T S^-1 dmu + 1/2 ln(det S / sqrt(det Sp det Sg))`, `S = (Sp + Sg) / 2`.
  public static func gaussianPlane(predicted: Box, truth: Box, alpha: Double = 0.5) -> Double {
    let (psx, psy) = sigmas(predicted, alpha: alpha)
    let (gsx, gsy) = sigmas(truth, alpha: alpha)
    let varX = (psx * psx + gsx * gsx) / 2
    let varY = (psy * psy + gsy * gsy) / 2
    let dx = predicted.centerX - truth.centerX
    let dy = predicted.centerY - truth.centerY
    let mahalanobis = (dx * dx / varX + dy * dy / varY) / 8
    // ln det, computed as sums of logs so large boxes cannot overflow.
    let logDetS = log(varX) + log(varY)
    let logDetP = 2 * log(psx) + 2 * log(psy)
    let logDetG = 2 * log(gsx) + 2 * log(gsy)
    let distance = mahalanobis + 0.5 * (logDetS - 0.5 * (logDetP + logDetG))
    let value = exp(-distance)
    return value.isFinite ? min(1, value) : 0
  }
}

/// Minimum-cost assignment (Hungarian algorithm with potentials, O(n^2 m)).
public enum Hungarian {
  /// Assigns each row to a distinct column (or each column to a distinct row when there are more rows
  /// than columns) minimizing the summed cost. Returns `(row, column)` pairs, `min(rows, cols)` of
  /// them. Non-finite costs are treated as very large.
  public static func assign(_ cost: [[Double]]) -> [(row: Int, column: Int)] {
    let rows = cost.count
    let columns = cost.first?.count ?? 0
    guard rows > 0, columns > 0, cost.allSatisfy({ $0.count == columns }) else { return [] }
    let sanitized = cost.map { row in row.map { $0.isFinite ? $0 : 1e12 } }
    if rows <= columns { return solve(sanitized) }
    let transposed = (0..<columns).map { c in (0..<rows).map { r in sanitized[r][c] } }
    return solve(transposed).map { (row: $0.column, column: $0.row) }
  }

  /// The classic shortest-augmenting-path form for rows <= columns (1-based internally).
  private static func solve(_ cost: [[Double]]) -> [(row: Int, column: Int)] {
    let n = cost.count
    let m = cost[0].count
    var u = [Double](repeating: 0, count: n + 1)
    var v = [Double](repeating: 0, count: m + 1)
    var match = [Int](repeating: 0, count: m + 1)  // column -> row (0 = free)
    var way = [Int](repeating: 0, count: m + 1)
    for row in 1...n {
      match[0] = row
      var column0 = 0
      var minimum = [Double](repeating: .infinity, count: m + 1)
      var used = [Bool](repeating: false, count: m + 1)
      repeat {
        used[column0] = true
        let row0 = match[column0]
        var delta = Double.infinity
        var column1 = 0
        for column in 1...m where !used[column] {
          let reduced = cost[row0 - 1][column - 1] - u[row0] - v[column]
          if reduced < minimum[column] {
            minimum[column] = reduced
            way[column] = column0
          }
          if minimum[column] < delta {
            delta = minimum[column]
            column1 = column
          }
        }
        for column in 0...m {
          if used[column] {
            u[match[column]] += delta
            v[column] -= delta
          } else {
            minimum[column] -= delta
          }
        }
        column0 = column1
      } while match[column0] != 0
      repeat {
        let column1 = way[column0]
        match[column0] = match[column1]
        column0 = column1
      } while column0 != 0
    }
    return (1...m).compactMap { column in
      match[column] == 0 ? nil : (row: match[column] - 1, column: column - 1)
    }.sorted { $0.row < $1.row }
  }
}
