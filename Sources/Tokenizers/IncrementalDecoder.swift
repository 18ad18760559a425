/// Streaming detokenization for generation: feed ids as they are sampled and print the returned
/// text at once. Text is released only at complete UTF-8 characters (a CJK character or emoji
/// split over several byte tokens comes out whole); bytes that can never become valid come out
/// as U+FFFD right away. The concatenation of every `feed` result and `finish()` equals
/// `tokenizer.decode(allIds, skipSpecialTokens:)`.
public struct IncrementalDecoder: Sendable {
  public let tokenizer: Tokenizer
  public let skipSpecialTokens: Bool
  private var pending: [UInt8] = []

  public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = false) {
    self.tokenizer = tokenizer
    self.skipSpecialTokens = skipSpecialTokens
  }

  /// The new text completed by `id` (possibly empty).
  public mutating func feed(_ id: Int) -> String {
    feed([id])
  }

  /// The new text completed by `ids` (possibly empty).
  public mutating func feed(_ ids: [Int]) -> String {
    tokenizer.appendBytes(of: ids, skipSpecialTokens: skipSpecialTokens, to: &pending)
    let readyCount = pending.count - UTF8Scanning.incompleteSuffixLength(pending)
    guard readyCount > 0 else { return "" }
    let text = String(decoding: pending[..<readyCount], as: UTF8.self)
    pending.removeFirst(readyCount)
    return text
  }

  /// Flushes what is still held back (an unfinished character becomes U+FFFD) and resets.
  public mutating func finish() -> String {
    defer { pending.removeAll() }
    return pending.isEmpty ? "" : String(decoding: pending, as: UTF8.self)
  }
}
