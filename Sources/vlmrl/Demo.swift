import ArgumentParser
import Common
import Foundation
import Imaging
import Rewards
import Torch

/// `vlmrl demo`: what `make demo` needs beside training and evaluation (docs/demo.md): the score a
/// model earns without looking at the image (the best constant box on the held-out set), and a
/// picture of held-out predictions before and after GRPO.
struct Demo: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Demo helpers: the best-constant-box baseline and a picture of predicted boxes.",
    subcommands: [Baseline.self, Samples.self])

  struct Baseline: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "The single box with the highest mean IoU / gaussian_point / gaussian_plane over a single-box data file.")
    @Option(help: "Single-box data file (mmkd format: bbox, width, height).") var data: String
    @Option(help: "Grid step in pixels: every box whose corners lie on the grid is scored.") var step = 2

    func run() throws {
      guard (1...64).contains(step) else { throw CLIError("--step \(step) is outside 1...64") }
      let records = try DemoRecord.load(URL(fileURLWithPath: data))
      let truths = records.map(\.box)
      let width = records.map(\.width).max() ?? 0, height = records.map(\.height).max() ?? 0
      print("best constant box over \(records.count) records (every box with corners on a \(step)-pixel grid of "
        + "\(width)x\(height), scored exhaustively; one box per metric):")
      var best: [String: Double] = [:]
      for metric in ConstantBox.Metric.allCases {
        let box = ConstantBox.best(for: metric, truths: truths, width: width, height: height, step: step)
        let scores = ConstantBox.Metric.allCases.map { ($0, ConstantBox.mean($0, of: box, truths: truths)) }
        best[metric.rawValue] = scores.first { $0.0 == metric }?.1
        let corners = [box.x1, box.y1, box.x2, box.y2].map { String(Int($0)) }.joined(separator: ", ")
        print("  best for \(metric.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0)) [\(corners)]  "
          + scores.map { String(format: "%@ %.4f", $0.0.rawValue, $0.1) }.joined(separator: ", "))
      }
      print("constant box: " + ConstantBox.Metric.allCases.map { String(format: "%@ %.4f", $0.rawValue, best[$0.rawValue] ?? 0) }
        .joined(separator: ", "))
    }
  }

  struct Samples: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "A PNG of held-out images with the ground-truth box (black) and the predicted boxes of two evaluations "
        + "(blue: --before, red: --after).")
    @Option(help: "Single-box data file the evaluations ran on.") var data: String
    @Option(help: "samples.jsonl (or its folder) of `vlmrl eval --out` before training.") var before: String
    @Option(help: "samples.jsonl (or its folder) of `vlmrl eval --out` after training.") var after: String
    @Option(help: "Output PNG.") var out: String
    @Option(help: "Images drawn (spread evenly over the file).") var count = 8
    @Option(help: "Images per row.") var columns = 4
    @Option(help: "Pixel magnification.") var scale = 4

    func run() throws {
      for (flag, value, range) in [("--count", count, 1...256), ("--columns", columns, 1...64), ("--scale", scale, 1...16)] {
        guard range.contains(value) else { throw CLIError("\(flag) \(value) is outside \(range.lowerBound)...\(range.upperBound)") }
      }
      let dataURL = URL(fileURLWithPath: data)
      let records = try DemoRecord.load(dataURL)
      let first = try DemoRecord.predictions(Self.samplesURL(before))
      let second = try DemoRecord.predictions(Self.samplesURL(after))
      let shown = min(count, records.count)
      let indices = (0..<shown).map { $0 * records.count / shown }
      var tiles: [RGBImage] = []
      for index in indices {
        let record = records[index]
        let image = try decodeImage(contentsOf: dataURL.deletingLastPathComponent().appendingPathComponent(record.imagePath))
        var tile = SamplePicture.magnified(image, by: scale)
        SamplePicture.outline(&tile, record.box, scale: scale, color: (0, 0, 0), inset: 0)
        if let box = first[index] { SamplePicture.outline(&tile, box, scale: scale, color: (30, 90, 255), inset: 2) }
        if let box = second[index] { SamplePicture.outline(&tile, box, scale: scale, color: (230, 20, 20), inset: 4) }
        tiles.append(tile)
      }
      let sheet = SamplePicture.grid(tiles, columns: columns, gap: 4)
      try encodePNG(sheet).write(to: URL(fileURLWithPath: out))
      print("wrote \(out): \(shown) held-out images, ground truth black, before blue, after red")
    }

    static func samplesURL(_ path: String) -> URL {
      var isFolder: ObjCBool = false
      let url = URL(fileURLWithPath: path)
      if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
        return url.appendingPathComponent("samples.jsonl")
      }
      return url
    }
  }
}

/// One single-box record: its ground-truth box (original pixels), image size and image path.
struct DemoRecord {
  var box: Box
  var width: Int
  var height: Int
  var imagePath: String

  static func load(_ url: URL) throws -> [DemoRecord] {
    guard let items = try JSONValue.parse(Data(contentsOf: url)).arrayValue else {
      throw CLIError("\(url.path): not a JSON array of single-box records")
    }
    return try items.enumerated().map { index, item in
      guard let fields = item.objectValue, let numbers = fields["bbox"]?.arrayValue?.compactMap(\.doubleValue),
        let box = Box(numbers: numbers), let width = fields["width"]?.intValue, let height = fields["height"]?.intValue,
        let path = (fields["image_path"] ?? fields["image"])?.stringValue
      else { throw CLIError("\(url.path): record \(index) lacks bbox (4 numbers), width, height or image_path") }
      return DemoRecord(box: box, width: width, height: height, imagePath: path)
    }
  }

  /// Record index -> the predicted box (parsed as the grounding rewards parse it) of an eval run's
  /// samples.jsonl, whose `source` ends with `#index`.
  static func predictions(_ url: URL) throws -> [Int: Box] {
    var boxes: [Int: Box] = [:]
    let text = try String(contentsOf: url, encoding: .utf8)
    for (number, line) in text.split(separator: "\n").enumerated() {
      guard let fields = try JSONValue.parse(String(line)).objectValue, let source = fields["source"]?.stringValue,
        let hash = source.lastIndex(of: "#"), let index = Int(source[source.index(after: hash)...].trimmingCharacters(in: .whitespaces))
      else { throw CLIError("\(url.path): line \(number + 1) has no source ending in #index") }
      if let output = fields["output"]?.stringValue, let box = AnswerParsing.firstBox(in: AnswerParsing.answer(in: output)) {
        boxes[index] = box
      }
    }
    return boxes
  }
}

/// The best constant box: the one answer a model that ignores the image would give, searched
/// exhaustively over a grid with libtorch (all x-pairs x all y-pairs x all records).
enum ConstantBox {
  enum Metric: String, CaseIterable { case iou, gaussianPoint = "gaussian_point", gaussianPlane = "gaussian_plane" }

  /// The reward of one box against one truth, as the reward functions compute it.
  static func score(_ metric: Metric, _ box: Box, _ truth: Box) -> Double {
    switch metric {
    case .iou: return BoxMath.iou(box, truth)
    case .gaussianPoint: return BoxMath.gaussianPoint(predicted: box, truth: truth)
    case .gaussianPlane: return BoxMath.gaussianPlane(predicted: box, truth: truth)
    }
  }

  static func mean(_ metric: Metric, of box: Box, truths: [Box]) -> Double {
    truths.isEmpty ? 0 : truths.reduce(0) { $0 + score(metric, box, $1) } / Double(truths.count)
  }

  /// The grid box with the highest mean `metric` over `truths` (the first of equals).
  static func best(for metric: Metric, truths: [Box], width: Int, height: Int, step: Int) -> Box {
    let xPairs = pairs(upTo: width, step: step), yPairs = pairs(upTo: height, step: step)
    guard !truths.isEmpty, !xPairs.isEmpty, !yPairs.isEmpty else { return Box(0, 0, Double(width), Double(height)) }
    let count = truths.count
    // [pairs, records] per-axis terms; the [chunk, yPairs, records] products are reduced over records.
    let x = axisTerms(xPairs, truths.map { ($0.x1, $0.x2) })
    let y = axisTerms(yPairs, truths.map { ($0.y1, $0.y2) })
    let chunk = max(1, 4_000_000 / (yPairs.count * count))
    var bestValue = -Double.infinity, bestBox = Box(0, 0, 0, 0)
    var start = 0
    while start < xPairs.count {
      let length = min(chunk, xPairs.count - start)
      let means = meanScores(metric, x: x.narrowed(start, length), y: y).max(dim: 1)
      let values = means.values.toArray(Double.self), columns = means.indices.toArray(Int64.self)
      for (offset, value) in values.enumerated() where value > bestValue {
        bestValue = value
        let (x1, x2) = xPairs[start + offset], (y1, y2) = yPairs[Int(columns[offset])]
        bestBox = Box(x1, y1, x2, y2)
      }
      start += length
    }
    return bestBox
  }

  static func pairs(upTo size: Int, step: Int) -> [(Double, Double)] {
    var values = Array(stride(from: 0, through: size, by: step))
    if values.last != size { values.append(size) }
    return values.indices.flatMap { i in values[(i + 1)...].map { (Double(values[i]), Double($0)) } }
  }

  /// Per axis, for every (pair, record): overlap length, box length, truth length, centre offset,
  /// and the Gaussian sigmas (alpha 0.5, floored at 0.5 pixel as `BoxMath` does).
  struct AxisTerms {
    var overlap, length, truthLength, offset, sigma, truthSigma: Tensor

    func narrowed(_ start: Int, _ count: Int) -> AxisTerms {
      AxisTerms(overlap: overlap.narrow(0, start: start, length: count), length: length.narrow(0, start: start, length: count),
                truthLength: truthLength, offset: offset.narrow(0, start: start, length: count),
                sigma: sigma.narrow(0, start: start, length: count), truthSigma: truthSigma)
    }
  }

  static func axisTerms(_ pairs: [(Double, Double)], _ truths: [(Double, Double)]) -> AxisTerms {
    let low = Tensor(pairs.map(\.0)).unsqueeze(1), high = Tensor(pairs.map(\.1)).unsqueeze(1)
    let truthLow = Tensor(truths.map(\.0)).unsqueeze(0), truthHigh = Tensor(truths.map(\.1)).unsqueeze(0)
    let overlap = (high.minimum(truthHigh) - low.maximum(truthLow)).clamp(min: 0)
    let length = high - low, truthLength = truthHigh - truthLow
    let offset = (low + high) / 2 - (truthLow + truthHigh) / 2
    return AxisTerms(overlap: overlap, length: length, truthLength: truthLength, offset: offset,
                     sigma: (length * 0.5).clamp(min: 0.5), truthSigma: (truthLength * 0.5).clamp(min: 0.5))
  }

  /// [xChunk, yPairs] mean over records of the metric for every (x pair, y pair).
  static func meanScores(_ metric: Metric, x: AxisTerms, y: AxisTerms) -> Tensor {
    func xs(_ t: Tensor) -> Tensor { t.unsqueeze(1) }  // [X, 1, R] (or [X, 1, 1])
    func ys(_ t: Tensor) -> Tensor { t.unsqueeze(0) }  // [1, Y, R]
    switch metric {
    case .iou:
      let intersection = xs(x.overlap) * ys(y.overlap)
      let union = xs(x.length) * ys(y.length) + xs(x.truthLength) * ys(y.truthLength) - intersection
      return (intersection / union.clamp(min: 1e-12)).mean(dim: 2)
    case .gaussianPoint:
      let dx = x.offset / x.truthSigma, dy = y.offset / y.truthSigma
      return ((xs(dx * dx) + ys(dy * dy)) * -0.5).exp().mean(dim: 2)
    case .gaussianPlane:
      // exp(-D) of `BoxMath.gaussianPlane` splits into an x factor times a y factor.
      func factor(_ t: AxisTerms) -> Tensor {
        let variance = (t.sigma * t.sigma + t.truthSigma * t.truthSigma) / 2
        let distance = t.offset * t.offset / variance / 8 + (variance.log() - (t.sigma.log() + t.truthSigma.log())) * 0.5
        return (distance * -1).exp()
      }
      return (xs(factor(x)) * ys(factor(y))).clamp(max: 1).mean(dim: 2)
    }
  }
}

/// Drawing for `demo samples`: nearest-neighbour magnification, box outlines, a grid of tiles.
enum SamplePicture {
  static func magnified(_ image: RGBImage, by scale: Int) -> RGBImage {
    let width = image.width * scale, height = image.height * scale
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
      for x in 0..<width {
        let source = ((y / scale) * image.width + x / scale) * 3, target = (y * width + x) * 3
        pixels[target] = image.pixels[source]
        pixels[target + 1] = image.pixels[source + 1]
        pixels[target + 2] = image.pixels[source + 2]
      }
    }
    return RGBImage(width: width, height: height, pixels: pixels)
  }

  /// A 2-pixel outline of `box` (original pixels; the box covers x1..<x2) moved `inset` pixels
  /// inwards, so boxes that coincide stay visible side by side; clipped to the image.
  static func outline(_ image: inout RGBImage, _ box: Box, scale: Int, color: (UInt8, UInt8, UInt8), inset: Int) {
    let s = Double(scale)
    let left = Int((box.x1 * s).rounded()) + inset, right = Int((box.x2 * s).rounded()) - 1 - inset
    let top = Int((box.y1 * s).rounded()) + inset, bottom = Int((box.y2 * s).rounded()) - 1 - inset
    guard left <= right, top <= bottom else { return }
    func paint(_ x: Int, _ y: Int) {
      guard x >= 0, y >= 0, x < image.width, y < image.height else { return }
      let offset = (y * image.width + x) * 3
      image.pixels[offset] = color.0
      image.pixels[offset + 1] = color.1
      image.pixels[offset + 2] = color.2
    }
    for thickness in 0..<2 {
      for x in left...right {
        paint(x, top + thickness)
        paint(x, bottom - thickness)
      }
      for y in top...bottom {
        paint(left + thickness, y)
        paint(right - thickness, y)
      }
    }
  }

  /// Tiles of equal size in rows of `columns`, separated by white `gap`-pixel lines.
  static func grid(_ tiles: [RGBImage], columns: Int, gap: Int) -> RGBImage {
    guard let first = tiles.first else { return RGBImage(width: 1, height: 1, pixels: [255, 255, 255]) }
    let perRow = min(columns, tiles.count), rows = (tiles.count + perRow - 1) / perRow
    let width = perRow * first.width + (perRow + 1) * gap, height = rows * first.height + (rows + 1) * gap
    var pixels = [UInt8](repeating: 255, count: width * height * 3)
    for (index, tile) in tiles.enumerated() {
      let originX = gap + (index % perRow) * (first.width + gap), originY = gap + (index / perRow) * (first.height + gap)
      for y in 0..<min(tile.height, first.height) {
        let rowStart = ((originY + y) * width + originX) * 3
        let sourceStart = y * tile.width * 3
        let length = min(tile.width, first.width) * 3
        pixels.replaceSubrange(rowStart..<rowStart + length, with: tile.pixels[sourceStart..<sourceStart + length])
      }
    }
    return RGBImage(width: width, height: height, pixels: pixels)
  }
}
