// Finding the answer and the boxes in a completion (docs/rewards.md, "Finding the answer").
import Common
import Foundation

/// An axis-aligned box `[x1, y1, x2, y2]` with x1 <= x2 and y1 <= y2 (reordered on creation).
public struct Box: Sendable, Hashable {
  public var x1, y1, x2, y2: Double

  /// Reorders the corners (min/max) so a box written backwards still has a non-negative size.
  public init(_ a: Double, _ b: Double, _ c: Double, _ d: Double) {
    x1 = min(a, c)
    x2 = max(a, c)
    y1 = min(b, d)
    y2 = max(b, d)
  }

  /// A box from exactly four finite numbers, else nil.
  public init?(numbers: [Double]) {
    guard numbers.count == 4, numbers.allSatisfy(\.isFinite) else { return nil }
    self.init(numbers[0], numbers[1], numbers[2], numbers[3])
  }

  /// A box from a JSON list of four numbers, else nil.
  public init?(json: JSONValue) {
    guard let items = json.arrayValue else { return nil }
    let numbers = items.compactMap(\.doubleValue)
    guard numbers.count == items.count else { return nil }
    self.init(numbers: numbers)
  }

  public var width: Double { x2 - x1 }
  public var height: Double { y2 - y1 }
  public var area: Double { width * height }
  public var centerX: Double { (x1 + x2) / 2 }
  public var centerY: Double { (y1 + y2) / 2 }
}

/// How a predicted box's numbers relate to the original image (config `box_frame`).
public enum BoxFrame: String, Sendable, CaseIterable {
  /// Already in original-image pixels (mmkd).
  case original
  /// Pixels of the resized model input (Qwen2.5-VL); rescaled by the resize ratios.
  case resized
  /// 0..1000 normalized (Qwen2-VL); scaled by width/1000 and height/1000.
  case norm1000

  /// Converts a predicted box to original-image pixels. Without image sizes the box is kept as is.
  public func toOriginal(_ box: Box, image: ImageGeometry?) -> Box {
    guard let image else { return box }
    let sx: Double
    let sy: Double
    switch self {
    case .original: return box
    case .resized:
      guard image.resizedWidth > 0, image.resizedHeight > 0 else { return box }
      sx = Double(image.originalWidth) / Double(image.resizedWidth)
      sy = Double(image.originalHeight) / Double(image.resizedHeight)
    case .norm1000:
      sx = Double(image.originalWidth) / 1000
      sy = Double(image.originalHeight) / 1000
    }
    return Box(box.x1 * sx, box.y1 * sy, box.x2 * sx, box.y2 * sy)
  }

  /// The inverse of `toOriginal`: a box in original-image pixels in this frame (what the model
  /// reads and writes, e.g. a region given in a prompt).
  public func fromOriginal(_ box: Box, image: ImageGeometry?) -> Box {
    guard let image, image.originalWidth > 0, image.originalHeight > 0 else { return box }
    let sx: Double
    let sy: Double
    switch self {
    case .original: return box
    case .resized:
      sx = Double(image.resizedWidth) / Double(image.originalWidth)
      sy = Double(image.resizedHeight) / Double(image.originalHeight)
    case .norm1000:
      sx = 1000 / Double(image.originalWidth)
      sy = 1000 / Double(image.originalHeight)
    }
    return Box(box.x1 * sx, box.y1 * sy, box.x2 * sx, box.y2 * sy)
  }
}

/// Answer and box extraction shared by the rewards.
public enum AnswerParsing {
  /// Content of the last `<answer>...</answer>` block, else the whole completion, trimmed.
  public static func answer(in completion: String) -> String {
    lastTagContent(in: completion, tag: "answer")?.trimmed ?? completion.trimmed
  }

  /// Content of the last complete `<tag>...</tag>` block (the closing tag after the opening one).
  public static func lastTagContent(in text: String, tag: String) -> String? {
    let open = "<\(tag)>"
    let close = "</\(tag)>"
    guard let closeRange = text.range(of: close, options: .backwards) else { return nil }
    let head = text[..<closeRange.lowerBound]
    guard let openRange = head.range(of: open, options: .backwards) else { return nil }
    return String(head[openRange.upperBound...])
  }

  /// Content of the last `\boxed{...}` (braces balanced), else nil.
  public static func lastBoxed(in text: String) -> String? {
    guard let start = text.range(of: "\\boxed{", options: .backwards) else { return nil }
    var depth = 1
    var index = start.upperBound
    while index < text.endIndex {
      let character = text[index]
      if character == "{" { depth += 1 }
      if character == "}" {
        depth -= 1
        if depth == 0 { return String(text[start.upperBound..<index]) }
      }
      index = text.index(after: index)
    }
    return nil
  }

  /// The first bracketed list of exactly four numbers in the text (covers `{"bbox_2d": [...]}` and
  /// `{"bbox": [...]}` objects, whose value is such a list), as a box, else nil.
  /// Unicode digits and minus signs are read as ASCII (`NumericText.fold`).
  public static func firstBox(in text: String) -> Box? {
    let bytes = Array(NumericText.fold(text).utf8)
    var index = 0
    while index < bytes.count {
      if bytes[index] == UInt8(ascii: "["), let numbers = numberList(bytes, from: index + 1),
        let box = Box(numbers: numbers)
      {
        return box
      }
      index += 1
    }
    return nil
  }

  /// True when the trimmed text is exactly `[n, n, n, n]` (spaces allowed) of unsigned integers
  /// (or decimals when allowed); Unicode digits count (`NumericText.fold`).
  public static func isBareBox(_ text: String, allowDecimals: Bool) -> Bool {
    let bytes = Array(NumericText.fold(text).trimmed.utf8)
    guard bytes.first == UInt8(ascii: "["), bytes.last == UInt8(ascii: "]") else { return false }
    let inner = bytes[1..<(bytes.count - 1)].split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
    guard inner.count == 4 else { return false }
    return inner.allSatisfy { part in
      let token = Array(part.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
      return isUnsignedNumber(token, allowDecimals: allowDecimals)
    }
  }

  /// A number list `a, b, ... ]` starting after a `[`; nil unless it is only numbers then `]`.
  static func numberList(_ bytes: [UInt8], from start: Int) -> [Double]? {
    var numbers: [Double] = []
    var index = start
    while true {
      while index < bytes.count, isSpace(bytes[index]) { index += 1 }
      guard let (value, end) = scanNumber(bytes, at: index) else { return nil }
      numbers.append(value)
      if numbers.count > 4 { return nil }
      index = end
      while index < bytes.count, isSpace(bytes[index]) { index += 1 }
      guard index < bytes.count else { return nil }
      if bytes[index] == UInt8(ascii: "]") { return numbers }
      guard bytes[index] == UInt8(ascii: ",") else { return nil }
      index += 1
    }
  }

  /// Scans `[+-]?(digits(.digits)?|.digits)` at `index`; returns the value and the end index.
  static func scanNumber(_ bytes: [UInt8], at start: Int) -> (Double, Int)? {
    var index = start
    if index < bytes.count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
      index += 1
    }
    let intStart = index
    while index < bytes.count, isDigit(bytes[index]) { index += 1 }
    var sawDigits = index > intStart
    if index < bytes.count, bytes[index] == UInt8(ascii: "."), index + 1 < bytes.count,
      isDigit(bytes[index + 1])
    {
      index += 1
      while index < bytes.count, isDigit(bytes[index]) { index += 1 }
      sawDigits = true
    }
    guard sawDigits, let value = Double(String(decoding: bytes[start..<index], as: UTF8.self)),
      value.isFinite
    else { return nil }
    return (value, index)
  }

  static func isUnsignedNumber(_ token: [UInt8], allowDecimals: Bool) -> Bool {
    guard !token.isEmpty else { return false }
    let parts = token.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
    guard parts.count == 1 || (allowDecimals && parts.count == 2) else { return false }
    return parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(isDigit) }
  }

  @inline(__always) static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }
  @inline(__always) static func isSpace(_ byte: UInt8) -> Bool {
    byte == 32 || byte == 9 || byte == 10 || byte == 13
  }
}

extension StringProtocol {
  var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
