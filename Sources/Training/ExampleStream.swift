import Datasets
import Foundation

/// The order in which a run consumes its examples, shared by GRPO and SFT: a seeded permutation per
/// epoch (`shuffle_dataset`) or file order, as a pure function of (seed, examples seen), so a
/// resumed run continues exactly where the interrupted one was.
public struct ExampleStream: Sendable {
  public let examples: [Example]
  public let seed: UInt64
  public let shuffle: Bool
  /// Examples consumed so far (epoch * count + position); saved in `TrainerState`.
  public var seen: Int
  /// The permutation of the current epoch (computed once per epoch).
  private var order: (epoch: Int, permutation: [Int])?

  public init(examples: [Example], seed: Int, shuffle: Bool, seen: Int = 0) {
    self.examples = examples
    self.seed = UInt64(seed)
    self.shuffle = shuffle
    self.seen = seen
  }

  public var epoch: Double { examples.isEmpty ? 0 : Double(seen) / Double(examples.count) }

  /// The next example in the order.
  public mutating func next() -> Example {
    let count = examples.count
    let epoch = seen / count, position = seen % count
    seen += 1
    guard shuffle else { return examples[position] }
    if order?.epoch != epoch { order = (epoch, DataOrder.permutation(count: count, seed: seed, epoch: epoch)) }
    return examples[order!.permutation[position]]
  }

  /// The next `count` examples.
  public mutating func next(_ count: Int) -> [Example] { (0..<count).map { _ in next() } }
}

/// Seeded data order and seed mixing (SplitMix64), so that order and sampling are pure functions of
/// their inputs and a resumed run repeats them exactly.
public enum DataOrder {
  public static func mix(_ values: UInt64...) -> UInt64 {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    for value in values { state = splitMix(state ^ value) }
    return state
  }

  static func splitMix(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Fisher-Yates with a SplitMix64 stream seeded by (seed, epoch).
  public static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
    var order = Array(0..<count)
    var state = mix(seed, UInt64(epoch))
    for i in stride(from: count - 1, to: 0, by: -1) {
      state = splitMix(state)
      order.swapAt(i, Int(state % UInt64(i + 1)))
    }
    return order
  }
}
