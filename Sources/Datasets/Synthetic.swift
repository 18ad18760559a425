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

/// A synthetic image: a background (a vertical gradient from `top` to `bottom`, or the fixed
/// coordinate gradient) and shapes.
public struct SyntheticScene: Sendable, Hashable {
  public var width: Int
  public var height: Int
  public var top: [UInt8]
  public var bottom: [UInt8]
  public var shapes: [SyntheticShape]
  public var background: SyntheticLayout.Background = .gradient

  /// Draws the scene as RGB8 pixels (later shapes over earlier ones; shapes never overlap).
  public func render() -> RGBImage {
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
      let t = height > 1 ? Double(y) / Double(height - 1) : 0
      let row = (0..<3).map { UInt8((Double(top[$0]) * (1 - t) + Double(bottom[$0]) * t).rounded()) }
      for x in 0..<width {
        let offset = (y * width + x) * 3
        let color = background == .gradient ? row : SyntheticLayout.coordinateColor(x: x, y: y, width: width, height: height)
        pixels[offset] = color[0]
        pixels[offset + 1] = color[1]
        pixels[offset + 2] = color[2]
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

/// How single-box scenes are placed and painted (`vlmrl data synth --background --cell --sides
/// --side-step --distractors --distinct-colors`). `standard` is what every task draws by default; the
/// demo's variant (docs/demo.md) centres few large shapes in the cells of a coarse grid over the
/// coordinate background.
public struct SyntheticLayout: Sendable, Hashable {
  public enum Background: String, Sendable, CaseIterable {
    /// A vertical gradient between two random light colors.
    case gradient
    /// A fixed light gradient on both axes (red rises left to right, green top to bottom), so every
    /// patch of the image shows where it is: Qwen2.5-VL's vision tower has only rotary (relative)
    /// positions, which a tiny model does not learn to turn into coordinates in minutes.
    case coordinates
  }

  public var background: Background
  /// When set, the image is cut into square cells of this side and every shape is centred in a
  /// cell of its own; nil: shapes anywhere, 2 pixels apart at least.
  public var cell: Int?
  /// Smallest and largest shape side in pixels; nil: imageSize / 8 ... imageSize / 4.
  public var sides: ClosedRange<Int>?
  /// Sides are the smallest plus a multiple of this many pixels.
  public var sideStep: Int
  /// Most distractors beside the target (0...2).
  public var maxDistractors: Int
  /// Distractors never share the target's color, so the color alone names the target.
  public var distinctColors: Bool
  /// Label noise: each corner of the recorded box is moved by a uniform integer in -N...N pixels
  /// (clipped to the image, redrawn until the box is proper); the drawn shape does not move. 0: exact.
  public var labelJitter: Int = 0

  public init(background: Background = .gradient, cell: Int? = nil, sides: ClosedRange<Int>? = nil, sideStep: Int = 1,
              maxDistractors: Int = 2, distinctColors: Bool = false) {
    self.background = background
    self.cell = cell
    self.sides = sides
    self.sideStep = sideStep
    self.maxDistractors = maxDistractors
    self.distinctColors = distinctColors
  }

  public static let standard = SyntheticLayout()

  /// The box recorded for a shape at `box`: `box` itself, or with `labelJitter` its jittered corners.
  func label(_ box: [Int], imageSize: Int, _ generator: inout SplitMix64) -> [Int] {
    guard labelJitter > 0 else { return box }
    while true {
      let moved = box.map { $0 + generator.uniform(below: 2 * labelJitter + 1) - labelJitter }
        .map { min(max($0, 0), imageSize) }
      if moved[0] < moved[2] && moved[1] < moved[3] { return moved }
    }
  }

  /// The side range for `imageSize`.
  func sideRange(imageSize: Int) -> ClosedRange<Int> {
    let minSide = max(6, imageSize / 8)
    return sides ?? minSide...max(minSide, imageSize / 4)
  }

  /// The coordinate background's color at (x, y): red 150...250 left to right, green 150...250 top
  /// to bottom, blue 200 (no shape color has blue 200, so shapes never blend into it).
  public static func coordinateColor(x: Int, y: Int, width: Int, height: Int) -> [UInt8] {
    func ramp(_ value: Int, _ size: Int) -> UInt8 { UInt8((150 + 100 * Double(value) / Double(max(1, size - 1))).rounded()) }
    return [ramp(x, width), ramp(y, height), 200]
  }

  /// Why the layout cannot draw scenes of `imageSize`, or nil.
  public func problem(imageSize: Int) -> String? {
    guard (0...2).contains(maxDistractors) else { return "distractors \(maxDistractors) is outside 0...2" }
    guard sideStep >= 1 else { return "side step \(sideStep) is not positive" }
    guard (0...imageSize / 4).contains(labelJitter) else { return "label jitter \(labelJitter) is outside 0...\(imageSize / 4) pixels" }
    let room = cell ?? imageSize
    if let cell {
      guard (1...imageSize).contains(cell) else { return "cell \(cell) is outside 1...\(imageSize) pixels" }
      let cells = (imageSize / cell) * (imageSize / cell)
      guard cells > maxDistractors else {
        return "\(cells) cells of \(cell) pixels cannot hold a target and \(maxDistractors) distractors"
      }
    }
    let range = sideRange(imageSize: imageSize)
    guard range.lowerBound >= 1, range.upperBound <= room else {
      return "sides \(range.lowerBound)...\(range.upperBound) are outside 1...\(room) pixels"
    }
    return nil
  }
}

/// Generates the synthetic tasks (for tests, the demo and benchmarks).
public enum SyntheticTasks {
  /// Largest image side `write` draws (a 4096x4096 PNG is 48 MiB of pixels before compression).
  public static let maxImageSize = 4096

  /// Writes `count` records of `task` to `directory`: PNG images under `images/` and the data file
  /// (`single_box.json`, `multi_box.json`, `counting.jsonl`, `multiple_choice.json`), whose URL is
  /// returned. The same seed gives the same files. `layout` applies to single-box scenes.
  @discardableResult
  public static func write(
    task: SyntheticTask, count: Int, seed: UInt64, imageSize: Int = 224, layout: SyntheticLayout = .standard,
    to directory: URL
  ) throws -> URL {
    guard imageSize >= 32, imageSize <= maxImageSize else {
      throw DatasetError.invalidConfig("synthetic", reason: "image size \(imageSize) is outside 32...\(maxImageSize) pixels")
    }
    if let problem = layout.problem(imageSize: imageSize) {
      throw DatasetError.invalidConfig("synthetic", reason: problem)
    }
    guard count >= 0 else {
      throw DatasetError.invalidConfig("synthetic", reason: "record count \(count) is negative")
    }
    let images = directory.appendingPathComponent("images")
    try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
    var records: [JSONValue] = []
    for index in 0..<count {
      let (scene, fields) = sample(task: task, index: index, seed: seed, imageSize: imageSize, layout: layout)
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
  public static func sample(task: SyntheticTask, index: Int, seed: UInt64, imageSize: Int, layout: SyntheticLayout = .standard)
    -> (scene: SyntheticScene, fields: [String: JSONValue])
  {
    var generator = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: index) &* 0xD1B5_4A32_D192_ED03))
    _ = generator.next()
    switch task {
    case .singleBox: return singleBox(&generator, imageSize: imageSize, layout: layout)
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

  /// A scene whose first shape is the target, with up to `layout.maxDistractors` distractors that
  /// differ from it.
  private static func targetScene(_ generator: inout SplitMix64, imageSize: Int, layout style: SyntheticLayout = .standard)
    -> SyntheticScene
  {
    let target = (kind: pick(SyntheticShape.Kind.allCases, &generator), color: pick(SyntheticShape.Color.allCases, &generator))
    var specs = [target]
    for _ in 0..<generator.uniform(below: style.maxDistractors + 1) {
      var other = (kind: pick(SyntheticShape.Kind.allCases, &generator), color: pick(SyntheticShape.Color.allCases, &generator))
      while other == target || (style.distinctColors && specs.contains { $0.color == other.color }) {
        other.color = pick(SyntheticShape.Color.allCases, &generator)
      }
      specs.append(other)
    }
    return layout(specs, imageSize: imageSize, style: style, &generator)
  }

  private static func singleBox(_ generator: inout SplitMix64, imageSize: Int, layout: SyntheticLayout)
    -> (SyntheticScene, [String: JSONValue])
  {
    let scene = targetScene(&generator, imageSize: imageSize, layout: layout)
    let shape = scene.shapes[0]
    return (scene, [
      "width": .int(scene.width), "height": .int(scene.height),
      "instruction": .string(locateInstruction(shape.color, shape.kind)),
      "bbox": .array(layout.label(shape.box, imageSize: imageSize, &generator).map { .int($0) }),
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
  /// ground truth always describes what was drawn). The first shape always fits. With
  /// `style.cell`, each shape is centred in a cell of its own, the cells in random order.
  static func layout(
    _ specs: [(kind: SyntheticShape.Kind, color: SyntheticShape.Color)], imageSize: Int, style: SyntheticLayout = .standard,
    _ generator: inout SplitMix64
  ) -> SyntheticScene {
    let top = (0..<3).map { _ in UInt8(170 + generator.uniform(below: 81)) }
    let bottom = (0..<3).map { _ in UInt8(170 + generator.uniform(below: 81)) }
    var shapes: [SyntheticShape] = []
    let sides = style.sideRange(imageSize: imageSize)
    func drawSide() -> Int { sides.lowerBound + style.sideStep * generator.uniform(below: (sides.upperBound - sides.lowerBound) / style.sideStep + 1) }
    if let cell = style.cell {
      let perRow = imageSize / cell
      let cells = shuffled(Array(0..<(perRow * perRow)), &generator)
      for (spec, index) in zip(specs, cells) {
        let length = min(drawSide(), cell)
        let x = (index % perRow) * cell + (cell - length) / 2, y = (index / perRow) * cell + (cell - length) / 2
        shapes.append(SyntheticShape(kind: spec.kind, color: spec.color, x1: x, y1: y, x2: x + length, y2: y + length))
      }
      return SyntheticScene(width: imageSize, height: imageSize, top: top, bottom: bottom, shapes: shapes, background: style.background)
    }
    for spec in specs {
      for _ in 0..<200 {
        let side = drawSide()
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
    return SyntheticScene(width: imageSize, height: imageSize, top: top, bottom: bottom, shapes: shapes, background: style.background)
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
