import Common
import Foundation
import Imaging

/// The synthetic tasks: deterministic from a seed, written in the real data formats.
public enum SyntheticTask: String, Sendable, CaseIterable {
  /// mmkd single-box grounding ("Locate the red circle."), a JSON array file.
  case singleBox = "single_box"
  /// mmkd multi-box grounding with shape names as labels (`abs_box`), a JSON array file.
  case multiBox = "multi_box"
  /// R1-V counting QA (`problem`, `solution: "<answer> 3 </answer>"`), a JSON-lines file.
  case counting
  /// A-OKVQA-like multiple choice on a shape's color (`choices`, `correct_choice_idx`), a JSON array.
  case multipleChoice = "multiple_choice"
  /// Region captioning for the cycle trainer: one shape's exact mask (`mask_rle`, COCO RLE counts),
  /// its box (`bbox`) and a caption naming its color, kind and place (`conversations`), a JSON array.
  case regionCaption = "region_caption"

  /// The data file name written for this task.
  public var fileName: String {
    switch self {
    case .counting: return "\(rawValue).jsonl"
    default: return "\(rawValue).json"
    }
  }
}

/// One drawn shape and its box `[x1, y1, x2, y2]` in pixels (the shape fills pixels x1..<x2, y1..<y2).
public struct SyntheticShape: Sendable, Hashable {
  public enum Kind: String, Sendable, CaseIterable { case circle, square, triangle, diamond }

  public enum Color: String, Sendable, CaseIterable {
    case red, green, blue, yellow, purple, orange

    public var rgb: (UInt8, UInt8, UInt8) {
      switch self {
      case .red: return (220, 40, 40)
      case .green: return (40, 170, 60)
      case .blue: return (40, 80, 220)
      case .yellow: return (235, 200, 30)
      case .purple: return (150, 60, 190)
      case .orange: return (245, 130, 20)
      }
    }
  }

  public var kind: Kind
  public var color: Color
  public var x1, y1, x2, y2: Int

  /// Whether the pixel whose center is (x + 0.5, y + 0.5) belongs to the shape.
  public func covers(x: Int, y: Int) -> Bool {
    let size = Double(x2 - x1)
    let u = (Double(x - x1) + 0.5) / size  // 0...1 across the box
    let v = (Double(y - y1) + 0.5) / Double(y2 - y1)
    guard u >= 0, u <= 1, v >= 0, v <= 1 else { return false }
    let tolerance = 1e-9  // so pixel centers exactly on an edge count on every platform
    switch kind {
    case .square: return true
    case .circle: return (u - 0.5) * (u - 0.5) + (v - 0.5) * (v - 0.5) <= 0.25 + tolerance
    case .diamond: return abs(u - 0.5) + abs(v - 0.5) <= 0.5 + tolerance
    case .triangle:
      // Apex at the top middle, base at the bottom; measured at the pixel's lower edge so the
      // apex row is drawn and the drawn extent is exactly the box.
      let lowerEdge = Double(y - y1 + 1) / Double(y2 - y1)
      return abs(u - 0.5) <= lowerEdge / 2 + tolerance
    }
  }

  public var box: [Int] { [x1, y1, x2, y2] }
}

/// A synthetic image: background colors (a vertical gradient from top to bottom) and shapes.
public struct SyntheticScene: Sendable, Hashable {
  public var width: Int
  public var height: Int
  public var top: [UInt8]
  public var bottom: [UInt8]
  public var shapes: [SyntheticShape]

  /// Draws the scene as RGB8 pixels (later shapes over earlier ones; shapes never overlap).
  public func render() -> RGBImage {
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
      let t = height > 1 ? Double(y) / Double(height - 1) : 0
      let row = (0..<3).map { UInt8((Double(top[$0]) * (1 - t) + Double(bottom[$0]) * t).rounded()) }
      for x in 0..<width {
        let offset = (y * width + x) * 3
        pixels[offset] = row[0]
        pixels[offset + 1] = row[1]
        pixels[offset + 2] = row[2]
      }
    }
    for shape in shapes {
      let (r, g, b) = shape.color.rgb
      for y in max(0, shape.y1)..<min(height, shape.y2) {
        for x in max(0, shape.x1)..<min(width, shape.x2) where shape.covers(x: x, y: y) {
          let offset = (y * width + x) * 3
          pixels[offset] = r
          pixels[offset + 1] = g
          pixels[offset + 2] = b
        }
      }
    }
    return RGBImage(width: width, height: height, pixels: pixels)
  }
}

/// Generates the synthetic tasks (for tests, the demo and benchmarks).
public enum SyntheticTasks {
  /// Writes `count` records of `task` to `directory`: PNG images under `images/` and the data file
  /// (`single_box.json`, `multi_box.json`, `counting.jsonl`, `multiple_choice.json`), whose URL is
  /// returned. The same seed gives the same files.
  /// Largest image side `write` draws (a 4096x4096 PNG is 48 MiB of pixels before compression).
  public static let maxImageSize = 4096

  @discardableResult
  public static func write(
    task: SyntheticTask, count: Int, seed: UInt64, imageSize: Int = 224, to directory: URL
  ) throws -> URL {
    guard imageSize >= 32, imageSize <= maxImageSize else {
      throw DatasetError.invalidConfig("synthetic", reason: "image size \(imageSize) is outside 32...\(maxImageSize) pixels")
    }
    guard count >= 0 else {
      throw DatasetError.invalidConfig("synthetic", reason: "record count \(count) is negative")
    }
    let images = directory.appendingPathComponent("images")
    try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
    var records: [JSONValue] = []
    for index in 0..<count {
      let (scene, fields) = sample(task: task, index: index, seed: seed, imageSize: imageSize)
      let name = String(format: "%@_%05d.png", task.rawValue, index)
      try encodePNG(scene.render()).write(to: images.appendingPathComponent(name))
      var record = fields
      let imageKey = [.counting, .multipleChoice, .regionCaption].contains(task) ? "image" : "image_path"
      record[imageKey] = .string("images/\(name)")
      records.append(.object(record))
    }
    let file = directory.appendingPathComponent(task.fileName)
    let lines = records.map(\.jsonString)
    let text = task == .counting
      ? lines.joined(separator: "\n") + "\n" : "[\n" + lines.joined(separator: ",\n") + "\n]\n"
    try Data(text.utf8).write(to: file)
    return file
  }

  /// The scene and record fields (without the image path) of record `index`.
  public static func sample(task: SyntheticTask, index: Int, seed: UInt64, imageSize: Int)
    -> (scene: SyntheticScene, fields: [String: JSONValue])
  {
    var generator = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: index) &* 0xD1B5_4A32_D192_ED03))
    _ = generator.next()
    switch task {
    case .singleBox: return singleBox(&generator, imageSize: imageSize)
    case .multiBox: return multiBox(&generator, imageSize: imageSize)
    case .counting: return counting(&generator, imageSize: imageSize)
    case .multipleChoice: return multipleChoice(&generator, index: index, imageSize: imageSize)
    case .regionCaption: return regionCaption(&generator, imageSize: imageSize)
    }
  }

  /// The single-box instruction (short and regular, for the demo's tiny model).
  public static func locateInstruction(_ color: SyntheticShape.Color, _ kind: SyntheticShape.Kind) -> String {
    "Locate the \(color.rawValue) \(kind.rawValue). Answer with [x1, y1, x2, y2]."
  }

  // MARK: Tasks

  /// A scene whose first shape is the target, with up to two distractors that differ from it.
  private static func targetScene(_ generator: inout SplitMix64, imageSize: Int) -> SyntheticScene {
    let target = (kind: pick(SyntheticShape.Kind.allCases, &generator), color: pick(SyntheticShape.Color.allCases, &generator))
    var specs = [target]
    for _ in 0..<generator.uniform(below: 3) {
      var other = (kind: pick(SyntheticShape.Kind.allCases, &generator), color: pick(SyntheticShape.Color.allCases, &generator))
      while other == target { other.color = pick(SyntheticShape.Color.allCases, &generator) }
      specs.append(other)
    }
    return layout(specs, imageSize: imageSize, &generator)
  }

  private static func singleBox(_ generator: inout SplitMix64, imageSize: Int) -> (SyntheticScene, [String: JSONValue]) {
    let scene = targetScene(&generator, imageSize: imageSize)
    let shape = scene.shapes[0]
    return (scene, [
      "width": .int(scene.width), "height": .int(scene.height),
      "instruction": .string(locateInstruction(shape.color, shape.kind)),
      "bbox": .array(shape.box.map { .int($0) }),
    ])
  }

  private static func multiBox(_ generator: inout SplitMix64, imageSize: Int) -> (SyntheticScene, [String: JSONValue]) {
    let count = 2 + generator.uniform(below: 4)
    let specs = (0..<count).map { _ in
      (kind: pick(SyntheticShape.Kind.allCases, &generator), color: pick(SyntheticShape.Color.allCases, &generator))
    }
    let scene = layout(specs, imageSize: imageSize, &generator)
    var boxes: [String: JSONValue] = [:]
    for kind in SyntheticShape.Kind.allCases {
      boxes[kind.rawValue] = .array(scene.shapes.filter { $0.kind == kind }.map { .array($0.box.map { .int($0) }) })
    }
    let names = SyntheticShape.Kind.allCases.map(\.rawValue).joined(separator: ", ")
    return (scene, [
      "width": .int(scene.width), "height": .int(scene.height),
      "instruction": .string(
        "Draw bounding boxes around every shape and label them with their names (\(names)), then output in JSON format."),
      "abs_box": .object(boxes),
    ])
  }

  private static func counting(_ generator: inout SplitMix64, imageSize: Int) -> (SyntheticScene, [String: JSONValue]) {
    let kind = pick(SyntheticShape.Kind.allCases, &generator)
    let others = SyntheticShape.Kind.allCases.filter { $0 != kind }
    var specs = (0..<(1 + generator.uniform(below: 5))).map { _ in (kind: kind, color: pick(SyntheticShape.Color.allCases, &generator)) }
    for _ in 0..<generator.uniform(below: 3) {
      specs.append((kind: pick(others, &generator), color: pick(SyntheticShape.Color.allCases, &generator)))
    }
    let scene = layout(specs, imageSize: imageSize, &generator)
    let placed = scene.shapes.filter { $0.kind == kind }.count
    return (scene, [
      "problem": .string("How many \(kind.rawValue)s are there in the image?"),
      "solution": .string("<answer> \(placed) </answer>"),
    ])
  }

  private static func multipleChoice(_ generator: inout SplitMix64, index: Int, imageSize: Int) -> (SyntheticScene, [String: JSONValue]) {
    let kind = pick(SyntheticShape.Kind.allCases, &generator)
    let color = pick(SyntheticShape.Color.allCases, &generator)
    var specs = [(kind: kind, color: color)]
    if generator.uniform(below: 2) == 1 {
      let other = pick(SyntheticShape.Kind.allCases.filter { $0 != kind }, &generator)
      specs.append((kind: other, color: pick(SyntheticShape.Color.allCases, &generator)))
    }
    let scene = layout(specs, imageSize: imageSize, &generator)
    var choices = [color] + shuffled(SyntheticShape.Color.allCases.filter { $0 != color }, &generator).prefix(3)
    choices = shuffled(choices, &generator)
    let answer = choices.firstIndex(of: color) ?? 0
    return (scene, [
      "question_id": .string(String(format: "synthetic_mc_%05d", index)),
      "question": .string("What color is the \(kind.rawValue)?"),
      "choices": .array(choices.map { .string($0.rawValue) }),
      "correct_choice_idx": .int(answer),
      "direct_answers": .array(Array(repeating: .string(color.rawValue), count: 10)),
      "rationales": .array([.string("The \(kind.rawValue) is \(color.rawValue).")]),
    ])
  }

  /// The caption of a shape: color, kind and which ninth of the image its centre is in.
  public static func regionCaption(_ shape: SyntheticShape, imageSize: Int) -> String {
    func third(_ center: Int) -> Int { min(2, 3 * center / max(1, imageSize)) }
    let row = ["top", "middle", "bottom"][third((shape.y1 + shape.y2) / 2)]
    let column = ["left", "center", "right"][third((shape.x1 + shape.x2) / 2)]
    let place = row == "middle" && column == "center" ? "center" : row == "middle" ? "middle \(column)" : "\(row) \(column)"
    return "The \(shape.color.rawValue) \(shape.kind.rawValue) at the \(place) of the image."
  }

  private static func regionCaption(_ generator: inout SplitMix64, imageSize: Int) -> (SyntheticScene, [String: JSONValue]) {
    let scene = targetScene(&generator, imageSize: imageSize)
    let shape = scene.shapes[0]
    // COCO RLE counts (column-major runs, starting with background) of exactly the drawn pixels.
    var counts: [Int] = []
    var current = false, run = 0
    for x in 0..<scene.width {
      for y in 0..<scene.height {
        let inside = x >= shape.x1 && x < shape.x2 && y >= shape.y1 && y < shape.y2 && shape.covers(x: x, y: y)
        if inside != current {
          counts.append(run)
          run = 0
          current = inside
        }
        run += 1
      }
    }
    counts.append(run)
    return (scene, [
      "width": .int(scene.width), "height": .int(scene.height),
      "conversations": .array([
        .object(["from": .string("human"), "value": .string("<image>\nDescribe the region.")]),
        .object(["from": .string("gpt"), "value": .string(regionCaption(shape, imageSize: imageSize))]),
      ]),
      "mask_rle": .object(["size": .array([.int(scene.height), .int(scene.width)]), "counts": .array(counts.map { .int($0) })]),
      "bbox": .array(shape.box.map { .int($0) }),
    ])
  }

  // MARK: Layout

  /// Places shapes without overlap (a shape that finds no room after 200 tries is left out, so
  /// ground truth always describes what was drawn). The first shape always fits.
  static func layout(
    _ specs: [(kind: SyntheticShape.Kind, color: SyntheticShape.Color)], imageSize: Int, _ generator: inout SplitMix64
  ) -> SyntheticScene {
    let top = (0..<3).map { _ in UInt8(170 + generator.uniform(below: 81)) }
    let bottom = (0..<3).map { _ in UInt8(170 + generator.uniform(below: 81)) }
    var shapes: [SyntheticShape] = []
    let minSide = max(6, imageSize / 8)
    let maxSide = max(minSide, imageSize / 4)
    for spec in specs {
      for _ in 0..<200 {
        let side = minSide + generator.uniform(below: maxSide - minSide + 1)
        let x = generator.uniform(below: imageSize - side + 1)
        let y = generator.uniform(below: imageSize - side + 1)
        let shape = SyntheticShape(kind: spec.kind, color: spec.color, x1: x, y1: y, x2: x + side, y2: y + side)
        let gap = 2
        let overlaps = shapes.contains {
          shape.x1 < $0.x2 + gap && $0.x1 < shape.x2 + gap && shape.y1 < $0.y2 + gap && $0.y1 < shape.y2 + gap
        }
        if !overlaps {
          shapes.append(shape)
          break
        }
      }
    }
    return SyntheticScene(width: imageSize, height: imageSize, top: top, bottom: bottom, shapes: shapes)
  }

  private static func pick<T>(_ items: [T], _ generator: inout SplitMix64) -> T {
    items[generator.uniform(below: items.count)]
  }

  private static func shuffled<T>(_ items: [T], _ generator: inout SplitMix64) -> [T] {
    var result = items
    for position in stride(from: result.count - 1, to: 0, by: -1) {
      result.swapAt(position, generator.uniform(below: position + 1))
    }
    return result
  }
}
