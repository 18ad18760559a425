// Math-answer equivalence for the `accuracy` reward (docs/rewards.md, "R1-style").
import Foundation

/// Decides whether a model's answer and a reference solution are mathematically the same.
///
/// Both sides are normalized (LaTeX spacing, `$`, `\text{}`, degree signs and common units removed,
/// `\dfrac` -> `\frac`, thousands separators, a leading `x =`), then evaluated as arithmetic
/// (`+ - * / ^`, `\times`, `\cdot`, `÷`, parentheses and braces, `\frac{a}{b}`, `\sqrt{x}`, `√x`,
/// `\pi`, `π`, `%`, implicit multiplication as in `2√3`). Values are equal within relative 1e-6.
/// When either side is not arithmetic, the normalized strings are compared (case-folded, inner
/// whitespace collapsed, a trailing period dropped).
public enum MathVerifier {
  /// True when `answer` and `solution` are equivalent.
  public static func equivalent(_ answer: String, _ solution: String) -> Bool {
    // A final answer is short; longer text is not compared (bounds the cost for any completion).
    guard answer.utf8.count <= RewardLimits.mathAnswerBytes, solution.utf8.count <= RewardLimits.mathAnswerBytes
    else { return false }
    let left = normalize(answer)
    let right = normalize(solution)
    if let a = evaluate(left), let b = evaluate(right) {
      if close(a.value, b.value) { return true }
      // "50%" vs "50": the same number written with and without the sign.
      if a.percent != b.percent {
        let (pa, pb) = (a.percent ? a.value * 100 : a.value, b.percent ? b.value * 100 : b.value)
        return close(pa, pb)
      }
      return false
    }
    return plain(left) == plain(right) && !plain(left).isEmpty
  }

  /// Relative tolerance 1e-6 (exact for zero).
  static func close(_ a: Double, _ b: Double) -> Bool {
    a == b || abs(a - b) <= 1e-6 * max(abs(a), abs(b))
  }

  /// Numeric value of a normalized math string, with whether it used `%`.
  public static func evaluate(_ text: String) -> (value: Double, percent: Bool)? {
    if let word = numberWords[text.lowercased()] { return (word, false) }
    guard let tokens = MathTokenizer.tokenize(text), !tokens.isEmpty else { return nil }
    var parser = MathExpressionParser(tokens: tokens)
    guard let value = parser.parseAll(), value.isFinite else { return nil }
    return (value, tokens.contains(.percent))
  }

  static func plain(_ text: String) -> String {
    var folded = text.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
    while folded.hasSuffix(".") { folded.removeLast() }
    return folded
  }

  // MARK: Normalization

  private static let removals = [
    "\\left", "\\right", "\\!", "\\,", "\\;", "\\:", "\\quad", "\\qquad", "\\displaystyle", "$",
    "^{\\circ}", "^\\circ", "\\circ", "\\degree", "°", "度", "^{°}",
  ]
  private static let wrappers = ["\\text{", "\\mathrm{", "\\textbf{", "\\mbox{", "\\mathbf{", "\\operatorname{"]
  private static let units = [
    "平方厘米", "平方米", "厘米", "毫米", "千米", "米", "个", "元", "cm^2", "cm^3", "m^2", "m^3", "cm²", "cm³",
    "m²", "m³", "degrees", "degree", "deg", "units", "unit", "meters", "meter", "inches", "inch", "feet",
    "km", "cm", "mm", "dm", "kg", "mg", "ml", "ft", "m", "g", "s",
  ]

  /// Removes typesetting, units and a leading `name =`, so only the value is left.
  public static func normalize(_ raw: String) -> String {
    var text = NumericText.fold(raw).trimmed
    if let boxed = AnswerParsing.lastBoxed(in: text) { text = boxed }
    text = text.replacingOccurrences(of: "\\dfrac", with: "\\frac")
      .replacingOccurrences(of: "\\tfrac", with: "\\frac")
    for wrapper in wrappers { text = unwrap(text, command: wrapper) }
    for removal in removals { text = text.replacingOccurrences(of: removal, with: "") }
    text = text.replacingOccurrences(of: "\\%", with: "%")
    if let equals = text.lastIndex(of: "="), !text[text.index(after: equals)...].trimmed.isEmpty {
      text = String(text[text.index(after: equals)...])
    }
    text = text.trimmed
    while text.hasSuffix(".") || text.hasSuffix("。") { text.removeLast() }
    text = stripUnit(text.trimmed)
    return stripThousands(text).trimmed
  }

  /// `\text{abc}` -> `abc` (balanced braces).
  static func unwrap(_ text: String, command: String) -> String {
    var text = text
    while let range = text.range(of: command) {
      var depth = 1
      var index = range.upperBound
      while index < text.endIndex, depth > 0 {
        if text[index] == "{" { depth += 1 } else if text[index] == "}" { depth -= 1 }
        if depth > 0 { index = text.index(after: index) }
      }
      guard index < text.endIndex else {
        text.replaceSubrange(range, with: "")
        continue
      }
      let inner = String(text[range.upperBound..<index])
      text.replaceSubrange(range.lowerBound...index, with: inner)
    }
    return text
  }

  /// Drops one trailing unit word when a value precedes it (`2√3 cm`, `45°`, `5m`).
  static func stripUnit(_ text: String) -> String {
    for unit in units where text.hasSuffix(unit) {
      let head = text.dropLast(unit.count)
      guard let last = head.trimmed.last, last.isNumber || last == "}" || last == ")" || last == "π" else {
        continue
      }
      if unit.first?.isLetter == true, let previous = head.last, previous.isLetter { continue }
      return head.trimmed
    }
    return text
  }

  /// `1,234,567` -> `1234567` (only well-formed groups of three).
  static func stripThousands(_ text: String) -> String {
    guard text.contains(","), text.range(of: #"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$"#, options: .regularExpression) != nil
    else { return text }
    return text.replacingOccurrences(of: ",", with: "")
  }

  static let numberWords: [String: Double] = [
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
  ]
}

// MARK: - Arithmetic

enum MathToken: Equatable {
  case number(Double)
  case op(Character)  // + - * / ^
  case open(Character)  // ( { [
  case close(Character)  // ) } ]
  case frac, sqrt, pi, percent
}

enum MathTokenizer {
  static func tokenize(_ text: String) -> [MathToken]? {
    var tokens: [MathToken] = []
    let characters = Array(text)
    var index = 0
    while index < characters.count {
      let character = characters[index]
      if character.isWhitespace {
        index += 1
        continue
      }
      if character.isASCII, character.isNumber || character == "." {
        var end = index
        while end < characters.count, characters[end].isASCII, characters[end].isNumber || characters[end] == "." {
          end += 1
        }
        guard end - index <= 40, let value = Double(String(characters[index..<end])) else { return nil }
        tokens.append(.number(value))
        index = end
        continue
      }
      if character == "\\" {
        var end = index + 1
        while end < characters.count, characters[end].isASCII, characters[end].isLetter { end += 1 }
        guard let token = command(String(characters[(index + 1)..<end])) else { return nil }
        tokens.append(token)
        index = end
        // TeX reads an unbraced argument as one character: `\frac12` is 1/2, `\sqrt2` is √2.
        var digitArguments = token == .frac ? 2 : (token == .sqrt ? 1 : 0)
        while digitArguments > 0, index < characters.count, characters[index].isASCII,
          let digit = characters[index].wholeNumberValue
        {
          tokens.append(.number(Double(digit)))
          index += 1
          digitArguments -= 1
        }
        continue
      }
      guard let token = symbol(character) else { return nil }
      tokens.append(token)
      index += 1
    }
    return tokens
  }

  static func command(_ name: String) -> MathToken? {
    switch name {
    case "frac": return .frac
    case "sqrt": return .sqrt
    case "pi": return .pi
    case "times", "cdot": return .op("*")
    case "div": return .op("/")
    default: return nil
    }
  }

  static func symbol(_ character: Character) -> MathToken? {
    switch character {
    case "+", "-", "*", "/", "^": return .op(character)
    case "×", "·", "∙": return .op("*")
    case "÷": return .op("/")
    case "−", "–": return .op("-")
    case "(", "{", "[": return .open(character)
    case ")", "}", "]": return .close(character)
    case "（": return .open("(")
    case "）": return .close(")")
    case "√": return .sqrt
    case "π": return .pi
    case "%": return .percent
    default: return nil
    }
  }
}

/// Recursive descent over `MathToken`s: expression := term (+|- term)*, term := unary ((*|/|implicit)
/// unary)*, unary := -unary | power, power := postfix (^ unary)?, postfix := primary %?.
struct MathExpressionParser {
  /// Nesting deeper than this (counting brackets, signs, `\sqrt`, `\frac` and powers) is not
  /// evaluated: the expression gives nil, never a stack overflow.
  static let maxDepth = 96
  let tokens: [MathToken]
  var index = 0
  var depth = 0

  init(tokens: [MathToken]) { self.tokens = tokens }

  mutating func parseAll() -> Double? {
    guard let value = expression(), index == tokens.count else { return nil }
    return value
  }

  private var current: MathToken? { index < tokens.count ? tokens[index] : nil }

  private mutating func expression() -> Double? {
    depth += 1
    defer { depth -= 1 }
    guard depth < Self.maxDepth, var value = term() else { return nil }
    while case .op(let symbol)? = current, symbol == "+" || symbol == "-" {
      index += 1
      guard let rhs = term() else { return nil }
      value = symbol == "+" ? value + rhs : value - rhs
    }
    return value
  }

  private mutating func term() -> Double? {
    guard var value = unary() else { return nil }
    while true {
      if case .op(let symbol)? = current, symbol == "*" || symbol == "/" {
        index += 1
        guard let rhs = unary() else { return nil }
        value = symbol == "*" ? value * rhs : value / rhs
      } else if startsPrimary(current) {
        guard let rhs = power() else { return nil }
        value *= rhs
      } else {
        return value
      }
    }
  }

  private func startsPrimary(_ token: MathToken?) -> Bool {
    switch token {
    case .number?, .open?, .frac?, .sqrt?, .pi?: return true
    default: return false
    }
  }

  private mutating func unary() -> Double? {
    depth += 1
    defer { depth -= 1 }
    guard depth < Self.maxDepth else { return nil }
    if case .op(let symbol)? = current, symbol == "-" || symbol == "+" {
      index += 1
      return unary().map { symbol == "-" ? -$0 : $0 }
    }
    return power()
  }

  private mutating func power() -> Double? {
    guard let base = postfix() else { return nil }
    guard case .op("^")? = current else { return base }
    index += 1
    guard let exponent = unary() else { return nil }
    return pow(base, exponent)
  }

  private mutating func postfix() -> Double? {
    guard let value = primary() else { return nil }
    if current == .percent {
      index += 1
      return value / 100
    }
    return value
  }

  private mutating func primary() -> Double? {
    // Every recursive path (`\sqrt\sqrt...`, `\frac\frac...`, brackets, signs, powers) passes
    // through `primary`, `unary` or `expression`, so this bounds the stack for any input.
    depth += 1
    defer { depth -= 1 }
    guard depth < Self.maxDepth, let token = current else { return nil }
    index += 1
    switch token {
    case .number(let value): return value
    case .pi: return Double.pi
    case .open(let bracket):
      guard let value = expression(), case .close(let closing)? = current, matches(bracket, closing) else { return nil }
      index += 1
      return value
    case .frac:
      guard let numerator = argument(), let denominator = argument() else { return nil }
      return numerator / denominator
    case .sqrt:
      guard let radicand = argument(), radicand >= 0 else { return nil }
      return radicand.squareRoot()
    default: return nil
    }
  }

  /// A `\frac` / `\sqrt` argument: a braced group or one primary (the tokenizer already split
  /// TeX's single-digit arguments, `\frac12`).
  private mutating func argument() -> Double? { primary() }

  private func matches(_ open: Character, _ close: Character) -> Bool {
    (open == "(" && close == ")") || (open == "{" && close == "}") || (open == "[" && close == "]")
  }
}

extension Array {
  subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
