import Foundation

/// SplitMix64 (Steele, Lea and Flood 2014): a small, fast, fully specified generator, so sampling
/// with a given `data_seed` selects the same records on every platform and Swift version.
public struct SplitMix64: RandomNumberGenerator, Sendable {
  private var state: UInt64

  public init(seed: UInt64) { state = seed }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// A uniform integer in `0..<bound` (Lemire's multiply-shift with rejection: no modulo bias).
  public mutating func uniform(below bound: Int) -> Int {
    precondition(bound > 0)
    let limit = UInt64(bound)
    while true {
      let product = next().multipliedFullWidth(by: limit)
      if product.low >= (0 &- limit) % limit { return Int(product.high) }
    }
  }

  /// A uniform double in [0, 1) from the top 53 bits.
  public mutating func unitDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}

/// How many records a sampling strategy takes: a count or a percentage of the records.
public enum SampleAmount: Sendable, Equatable {
  case count(Int)
  case percent(Double)

  /// The number of records out of `available`: `ceil(p * n / 100)` for percentages (mmkd's rule),
  /// before clamping to what exists.
  public func requested(of available: Int) -> Int {
    switch self {
    case .count(let count): return count
    case .percent(let percent): return Int((percent * Double(available) / 100).rounded(.up))
    }
  }
}

/// `sampling_strategy` of a dataset YAML entry: `all`, `first:N`, `end:N`, `random:N`, with `N` a
/// count or a (fractional) percentage such as `12.5%`.
public enum SamplingStrategy: Sendable, Equatable, CustomStringConvertible {
  case all
  case first(SampleAmount)
  case end(SampleAmount)
  case random(SampleAmount)

  /// Parses `all`, `first:100`, `end:10`, `random:50%`, `random:12.5%`, `random:200`.
  public init(parsing text: String) throws {
    let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
    if trimmed == "all" || trimmed.isEmpty {
      self = .all
      return
    }
    let pieces = trimmed.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
    guard pieces.count == 2, let amount = Self.amount(pieces[1]) else {
      throw DatasetError.invalidConfig(
        "sampling_strategy", reason: "'\(text)' is not all, first:N, end:N, random:N or random:P%")
    }
    switch pieces[0] {
    case "first": self = .first(amount)
    case "end", "last": self = .end(amount)
    case "random": self = .random(amount)
    default:
      throw DatasetError.invalidConfig(
        "sampling_strategy", reason: "unknown strategy '\(pieces[0])' (known: all, first, end, random)")
    }
  }

  private static func amount(_ text: String) -> SampleAmount? {
    if text.hasSuffix("%") {
      guard let percent = Double(text.dropLast()), percent.isFinite, percent >= 0, percent <= 100 else { return nil }
      return .percent(percent)
    }
    guard let count = Int(text), count >= 0 else { return nil }
    return .count(count)
  }

  public var description: String {
    func text(_ amount: SampleAmount) -> String {
      switch amount {
      case .count(let count): return "\(count)"
      case .percent(let percent): return "\(percent)%"
      }
    }
    switch self {
    case .all: return "all"
    case .first(let amount): return "first:\(text(amount))"
    case .end(let amount): return "end:\(text(amount))"
    case .random(let amount): return "random:\(text(amount))"
    }
  }

  /// Whether selecting needs the number of records first (`first:N` and `all` can stream).
  var needsCount: Bool {
    switch self {
    case .all: return false
    case .first(let amount): if case .count = amount { return false } else { return true }
    case .end, .random: return true
    }
  }

  /// The record indices selected out of `available`, in the order they are used, and a warning
  /// when more were asked for than exist. `random` is a seeded partial Fisher-Yates shuffle (the
  /// references shuffle everything unseeded and take the first N; the order is random here too).
  public func select(available: Int, seed: UInt64) -> (indices: [Int], warning: String?) {
    let amount: SampleAmount
    switch self {
    case .all: return (Array(0..<available), nil)
    case .first(let value), .end(let value), .random(let value): amount = value
    }
    let requested = amount.requested(of: available)
    let taken = min(requested, available)
    let warning = requested > available
      ? "\(self) asks for \(requested) records but only \(available) exist; taking all \(available)" : nil
    switch self {
    case .all: return (Array(0..<available), nil)
    case .first: return (Array(0..<taken), warning)
    case .end: return (Array((available - taken)..<available), warning)
    case .random:
      var generator = SplitMix64(seed: seed)
      var pool = Array(0..<available)
      for position in 0..<taken {
        let pick = position + generator.uniform(below: available - position)
        pool.swapAt(position, pick)
      }
      return (Array(pool[0..<taken]), warning)
    }
  }
}
