// A reader for the WordNet 3.0 database files (index.*, data.*, *.exc), enough for METEOR's
// synonym stage: nltk's `wordnet.synsets(word)` lemma names, with nltk's morphy.
import Foundation

public final class WordNet: Sendable {
  /// Parts of speech in nltk's POS_LIST order, with their file suffixes.
  static let partsOfSpeech: [(tag: String, file: String)] = [("n", "noun"), ("v", "verb"), ("a", "adj"), ("r", "adv")]
  static let substitutions: [String: [(String, String)]] = [
    "n": [("s", ""), ("ses", "s"), ("ves", "f"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
          ("men", "man"), ("ies", "y")],
    "v": [("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")],
    "a": [("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
    "r": [],
  ]

  /// The default location of Debian's `wordnet-base`.
  public static let defaultPath = "/usr/share/wordnet"

  private let offsets: [String: [String: [Int]]]  // pos -> lemma -> synset offsets
  private let exceptions: [String: [String: [String]]]  // pos -> inflected -> bases
  private let data: [String: [UInt8]]  // pos -> data file bytes

  /// Loads the database in `directory`; throws when a file is missing or unreadable.
  public init(directory: String = WordNet.defaultPath) throws {
    var offsets: [String: [String: [Int]]] = [:]
    var exceptions: [String: [String: [String]]] = [:]
    var data: [String: [UInt8]] = [:]
    for (tag, file) in Self.partsOfSpeech {
      let base = URL(fileURLWithPath: directory)
      offsets[tag] = Self.readIndex(try Data(contentsOf: base.appendingPathComponent("index.\(file)")))
      exceptions[tag] = Self.readExceptions(try Data(contentsOf: base.appendingPathComponent("\(file).exc")))
      data[tag] = Array(try Data(contentsOf: base.appendingPathComponent("data.\(file)")))
    }
    self.offsets = offsets
    self.exceptions = exceptions
    self.data = data
  }

  /// `lemma pos synset_cnt p_cnt [ptr...] sense_cnt tagsense_cnt offset...`; license lines start
  /// with a space.
  static func readIndex(_ file: Data) -> [String: [Int]] {
    var map: [String: [Int]] = [:]
    for line in file.split(separator: UInt8(ascii: "\n")) where line.first != UInt8(ascii: " ") {
      let fields = line.split(separator: UInt8(ascii: " ")).map { String(decoding: $0, as: UTF8.self) }
      guard fields.count >= 4, let synsetCount = Int(fields[2]), let pointerCount = Int(fields[3]) else { continue }
      let first = 4 + pointerCount + 2
      guard synsetCount > 0, fields.count >= first + synsetCount else { continue }
      map[fields[0]] = fields[first..<(first + synsetCount)].compactMap { Int($0) }
    }
    return map
  }

  static func readExceptions(_ file: Data) -> [String: [String]] {
    var map: [String: [String]] = [:]
    for line in file.split(separator: UInt8(ascii: "\n")) {
      let terms = line.split(whereSeparator: { $0 == 32 || $0 == 9 || $0 == 13 }).map { String(decoding: $0, as: UTF8.self) }
      if let first = terms.first { map[first] = Array(terms.dropFirst()) }
    }
    return map
  }

  /// nltk's `_morphy`: the exception list's bases, else one round of suffix rules; the word itself
  /// and those forms that exist in the index for this part of speech.
  func morphy(_ form: String, pos: String) -> [String] {
    let candidates: [String]
    if let bases = exceptions[pos]?[form] {
      candidates = bases
    } else {
      candidates = (Self.substitutions[pos] ?? []).compactMap { old, new in
        form.hasSuffix(old) ? String(form.dropLast(old.count)) + new : nil
      }
    }
    var seen = Set<String>()
    return ([form] + candidates).filter { offsets[pos]?[$0] != nil && seen.insert($0).inserted }
  }

  /// Lemma names (without `_`-joined phrases filtering; callers filter) of every synset of `word`.
  public func synonyms(of word: String) -> Set<String> {
    let lemma = word.lowercased()
    var names = Set<String>()
    for (pos, _) in Self.partsOfSpeech {
      for form in morphy(lemma, pos: pos) {
        for offset in offsets[pos]?[form] ?? [] { names.formUnion(lemmaNames(pos: pos, offset: offset)) }
      }
    }
    return names
  }

  /// Words of the data line at `offset`: `offset lex_filenum ss_type w_cnt(hex) word lex_id ...`;
  /// adjective markers such as `(a)` or `(ip)` are removed as nltk does.
  func lemmaNames(pos: String, offset: Int) -> [String] {
    guard let bytes = data[pos], offset >= 0, offset < bytes.count else { return [] }
    var end = offset
    while end < bytes.count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
    let fields = bytes[offset..<end].split(separator: UInt8(ascii: " ")).map { String(decoding: $0, as: UTF8.self) }
    guard fields.count >= 4, let count = Int(fields[3], radix: 16), fields.count >= 4 + 2 * count else { return [] }
    return (0..<count).map { index in
      var name = fields[4 + 2 * index]
      if name.hasSuffix(")"), let open = name.lastIndex(of: "(") { name = String(name[..<open]) }
      return name
    }
  }
}
