import Synchronization

/// The BPE model of a byte-level tokenizer: vocabulary, merge ranks, and the merge loop.
///
/// Symbols are handled as ids throughout: a piece's bytes become the ids of their byte-level
/// characters, and merges are looked up by `(left id, right id)`. The merge loop matches Hugging
/// Face's `Word::merge_all` (a min-queue ordered by rank then position, stale entries skipped),
/// which for trained merge tables equals the GPT-2 "lowest rank pair, all occurrences" loop.
struct BPEModel: Sendable {
  struct Merge: Sendable {
    var rank: Int32
    var newId: Int32
  }

  /// Token string -> id, as in `model.vocab`.
  let vocab: [String: Int]
  /// `(left << 32) | right` -> rank and merged id.
  let merges: [UInt64: Merge]
  /// Id of each byte's single-character token; -1 when the vocabulary lacks it.
  let byteIds: [Int32]
  /// `model.ignore_merges`: a piece that is itself a vocabulary entry is emitted whole.
  let ignoreMerges: Bool
  /// `model.unk_token` id and `model.fuse_unk`; byte-level vocabularies never need them.
  let unknownId: Int32?
  let fuseUnknown: Bool

  init(vocab: [String: Int], mergePairs: [(String, String)], ignoreMerges: Bool,
       unknownToken: String?, fuseUnknown: Bool, source: String) throws {
    self.vocab = vocab
    var merges: [UInt64: Merge] = [:]
    merges.reserveCapacity(mergePairs.count)
    for (rank, (left, right)) in mergePairs.enumerated() {
      let field = "model.merges[\(rank)]"
      guard let leftId = vocab[left], let rightId = vocab[right] else {
        throw TokenizerError.invalidField(
          source: source, field: field, reason: "merge \"\(left) \(right)\" uses a token missing from model.vocab")
      }
      guard let newId = vocab[left + right] else {
        throw TokenizerError.invalidField(
          source: source, field: field, reason: "merged token \"\(left + right)\" is missing from model.vocab")
      }
      let key = Self.key(Int32(leftId), Int32(rightId))
      // A repeated pair takes its last rank: Hugging Face collects the merges into a map in order.
      merges[key] = Merge(rank: Int32(rank), newId: Int32(newId))
    }
    self.merges = merges
    byteIds = ByteLevel.scalarForByte.map { scalar in vocab[String(Character(scalar))].map(Int32.init) ?? -1 }
    self.ignoreMerges = ignoreMerges
    if let unknownToken {
      guard let id = vocab[unknownToken] else {
        throw TokenizerError.invalidField(
          source: source, field: "model.unk_token", reason: "\"\(unknownToken)\" is not in model.vocab")
      }
      unknownId = Int32(id)
    } else {
      unknownId = nil
    }
    self.fuseUnknown = fuseUnknown
  }

  @inline(__always) static func key(_ left: Int32, _ right: Int32) -> UInt64 {
    UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
  }

  /// Token ids of one pre-tokenized piece, given as raw UTF-8 bytes.
  func tokenize(_ bytes: ArraySlice<UInt8>) -> [Int32] {
    if bytes.isEmpty { return [] }
    if ignoreMerges, let id = vocab[ByteLevel.encode(bytes)] { return [Int32(id)] }
    var symbols = initialSymbols(bytes)
    mergeAll(&symbols)
    return symbols
  }

  /// One symbol per byte; bytes missing from the vocabulary become `unk` (fused when asked)
  /// or are dropped when there is no `unk`, as Hugging Face's BPE does.
  private func initialSymbols(_ bytes: ArraySlice<UInt8>) -> [Int32] {
    var symbols: [Int32] = []
    symbols.reserveCapacity(bytes.count)
    for byte in bytes {
      let id = byteIds[Int(byte)]
      if id >= 0 {
        symbols.append(id)
      } else if let unknownId {
        if fuseUnknown, symbols.last == unknownId { continue }
        symbols.append(unknownId)
      }
    }
    return symbols
  }

  /// Applies merges in (rank, position) order over a doubly linked list of symbols.
  private func mergeAll(_ symbols: inout [Int32]) {
    let count = symbols.count
    guard count > 1 else { return }
    var previous = [Int32](repeating: -1, count: count)
    var next = [Int32](repeating: -1, count: count)
    var alive = [Bool](repeating: true, count: count)
    var queue = MergeQueue()
    for index in 0..<count {
      previous[index] = Int32(index - 1)
      next[index] = index + 1 < count ? Int32(index + 1) : -1
      if index + 1 < count, let merge = merges[Self.key(symbols[index], symbols[index + 1])] {
        queue.push(MergeQueue.Entry(rank: merge.rank, position: Int32(index), newId: merge.newId))
      }
    }
    while let top = queue.pop() {
      let position = Int(top.position)
      guard alive[position], next[position] >= 0 else { continue }
      let right = Int(next[position])
      // A stale entry: the pair at this position changed since it was queued.
      guard let merge = merges[Self.key(symbols[position], symbols[right])], merge.newId == top.newId else { continue }
      symbols[position] = top.newId
      alive[right] = false
      next[position] = next[right]
      if next[right] >= 0 { previous[Int(next[right])] = Int32(position) }
      if previous[position] >= 0 {
        let left = Int(previous[position])
        if let merge = merges[Self.key(symbols[left], symbols[position])] {
          queue.push(MergeQueue.Entry(rank: merge.rank, position: Int32(left), newId: merge.newId))
        }
      }
      if next[position] >= 0, let merge = merges[Self.key(symbols[position], symbols[Int(next[position])])] {
        queue.push(MergeQueue.Entry(rank: merge.rank, position: Int32(position), newId: merge.newId))
      }
    }
    var merged: [Int32] = []
    merged.reserveCapacity(count)
    for index in 0..<count where alive[index] { merged.append(symbols[index]) }
    symbols = merged
  }
}

/// A binary min-heap of pending merges ordered by rank, then by position (leftmost first).
struct MergeQueue {
  struct Entry {
    var rank: Int32
    var position: Int32
    var newId: Int32

    func precedes(_ other: Entry) -> Bool {
      rank != other.rank ? rank < other.rank : position < other.position
    }
  }

  private var heap: [Entry] = []

  mutating func push(_ entry: Entry) {
    heap.append(entry)
    var child = heap.count - 1
    while child > 0 {
      let parent = (child - 1) / 2
      guard heap[child].precedes(heap[parent]) else { break }
      heap.swapAt(child, parent)
      child = parent
    }
  }

  mutating func pop() -> Entry? {
    guard let first = heap.first else { return nil }
    let last = heap.removeLast()
    if heap.isEmpty { return first }
    heap[0] = last
    var parent = 0
    while true {
      let left = 2 * parent + 1
      let right = left + 1
      var best = parent
      if left < heap.count, heap[left].precedes(heap[best]) { best = left }
      if right < heap.count, heap[right].precedes(heap[best]) { best = right }
      if best == parent { break }
      heap.swapAt(parent, best)
      parent = best
    }
    return first
  }
}

/// A thread-safe cache of piece -> ids. Like Hugging Face's BPE cache it has a fixed capacity
/// and simply stops inserting when full; long pieces are not cached. Keys are the piece's bytes:
/// `String` keys would compare by canonical equivalence ("e\u{301}" == "é"), which is wrong for
/// text that is not normalized, and slower to hash.
final class WordCache: Sendable {
  static let capacity = 100_000
  static let maxPieceBytes = 256

  /// Up to 15 bytes packed with their length, so most lookups allocate nothing.
  struct ShortKey: Hashable {
    var low: UInt64
    var high: UInt64

    init?(_ bytes: ArraySlice<UInt8>) {
      guard bytes.count < 16 else { return nil }
      low = 0
      high = UInt64(bytes.count) << 56
      for (offset, byte) in bytes.enumerated() {
        if offset < 8 { low |= UInt64(byte) << (8 * offset) } else { high |= UInt64(byte) << (8 * (offset - 8)) }
      }
    }
  }

  private struct Tables {
    var short: [ShortKey: [Int32]] = [:]
    var long: [[UInt8]: [Int32]] = [:]
    var count: Int { short.count + long.count }
  }

  private let storage = Mutex(Tables())

  func lookup(_ piece: ArraySlice<UInt8>) -> [Int32]? {
    if let key = ShortKey(piece) { return storage.withLock { $0.short[key] } }
    let key = Array(piece)
    return storage.withLock { $0.long[key] }
  }

  func insert(_ piece: ArraySlice<UInt8>, _ ids: [Int32]) {
    let shortKey = ShortKey(piece)
    let longKey = shortKey == nil ? Array(piece) : []
    storage.withLock { tables in
      guard tables.count < Self.capacity else { return }
      if let shortKey { tables.short[shortKey] = ids } else { tables.long[longKey] = ids }
    }
  }
}
