// The Porter stemmer as nltk runs it by default (NLTK_EXTENSIONS mode), because METEOR's stem
// stage must match nltk's meteor_score. Words are ASCII-lowercased first; other text passes through.
import Foundation

public enum PorterStemmer {
  /// nltk's irregular forms.
  static let pool: [String: String] = [
    "sky": "sky", "skies": "sky", "dying": "die", "lying": "lie", "tying": "tie", "news": "news",
    "innings": "inning", "inning": "inning", "outings": "outing", "outing": "outing",
    "cannings": "canning", "canning": "canning", "howe": "howe", "proceed": "proceed",
    "exceed": "exceed", "succeed": "succeed",
  ]

  typealias Rule = (suffix: String, replacement: String, condition: (([Character]) -> Bool)?)

  public static func stem(_ word: String) -> String {
    let lower = word.lowercased()
    if let irregular = pool[lower] { return irregular }
    if lower.count <= 2 { return lower }
    var w = Array(lower)
    w = step1a(w)
    w = step1b(w)
    w = step1c(w)
    w = step2(w)
    w = step3(w)
    w = step4(w)
    w = step5a(w)
    w = step5b(w)
    return String(w)
  }

  /// A `y` is a consonant at the start or after a vowel, a vowel after a consonant. Walks back over
  /// the run of `y`s (no recursion: a word of 100,000 `y`s must not overflow the stack).
  static func isConsonant(_ w: [Character], _ i: Int) -> Bool {
    switch w[i] {
    case "a", "e", "i", "o", "u": return false
    case "y":
      var start = i
      while start > 0, w[start - 1] == "y" { start -= 1 }
      // The first `y` of the run: a consonant at the start of the word or after a vowel.
      let firstIsConsonant = start == 0 || "aeiou".contains(w[start - 1])
      return (i - start) % 2 == 0 ? firstIsConsonant : !firstIsConsonant
    default: return true
    }
  }

  /// Number of vowel-consonant sequences (one pass: each `y` decided from its predecessor).
  static func measure(_ w: [Character]) -> Int {
    var count = 0
    var previousVowel = false
    var previousConsonant = true
    for i in w.indices {
      let consonant: Bool
      switch w[i] {
      case "a", "e", "i", "o", "u": consonant = false
      case "y": consonant = i == 0 ? true : !previousConsonant
      default: consonant = true
      }
      if consonant && previousVowel { count += 1 }
      previousVowel = !consonant
      previousConsonant = consonant
    }
    return count
  }

  static func containsVowel(_ w: [Character]) -> Bool {
    var previousConsonant = true
    for i in w.indices {
      let consonant: Bool
      switch w[i] {
      case "a", "e", "i", "o", "u": return true
      case "y": consonant = i == 0 ? true : !previousConsonant
      default: consonant = true
      }
      if !consonant { return true }
      previousConsonant = consonant
    }
    return false
  }

  static func endsDoubleConsonant(_ w: [Character]) -> Bool {
    w.count >= 2 && w[w.count - 1] == w[w.count - 2] && isConsonant(w, w.count - 1)
  }

  static func endsCVC(_ w: [Character]) -> Bool {
    let n = w.count
    if n >= 3, isConsonant(w, n - 3), !isConsonant(w, n - 2), isConsonant(w, n - 1), !"wxy".contains(w[n - 1]) {
      return true
    }
    return n == 2 && !isConsonant(w, 0) && isConsonant(w, 1)
  }

  static func ends(_ w: [Character], _ suffix: String) -> Bool {
    let s = Array(suffix)
    return w.count >= s.count && Array(w.suffix(s.count)) == s
  }

  static func positive(_ stem: [Character]) -> Bool { measure(stem) > 0 }
  static func greaterThanOne(_ stem: [Character]) -> Bool { measure(stem) > 1 }

  /// The first rule whose suffix matches decides: applied when its condition holds, else the word
  /// is kept (nltk's `_apply_rule_list`). `*d` stands for a double consonant.
  static func apply(_ w: [Character], _ rules: [Rule]) -> [Character] {
    for rule in rules {
      if rule.suffix == "*d" {
        guard endsDoubleConsonant(w) else { continue }
        let stem = Array(w.dropLast(2))
        return rule.condition?(stem) ?? true ? stem + Array(rule.replacement) : w
      }
      guard ends(w, rule.suffix) else { continue }
      let stem = Array(w.dropLast(rule.suffix.count))
      return rule.condition?(stem) ?? true ? stem + Array(rule.replacement) : w
    }
    return w
  }

  static func step1a(_ w: [Character]) -> [Character] {
    if ends(w, "ies"), w.count == 4 { return Array(w.dropLast(3)) + ["i", "e"] }
    return apply(w, [("sses", "ss", nil), ("ies", "i", nil), ("ss", "ss", nil), ("s", "", nil)])
  }

  static func step1b(_ w: [Character]) -> [Character] {
    if ends(w, "ied") { return Array(w.dropLast(3)) + (w.count == 4 ? ["i", "e"] : ["i"]) }
    if ends(w, "eed") {
      let stem = Array(w.dropLast(3))
      return measure(stem) > 0 ? stem + ["e", "e"] : w
    }
    var intermediate: [Character]? = nil
    for suffix in ["ed", "ing"] where ends(w, suffix) {
      let stem = Array(w.dropLast(suffix.count))
      if containsVowel(stem) {
        intermediate = stem
        break
      }
    }
    guard let stem = intermediate, let last = stem.last else { return w }
    return apply(stem, [
      ("at", "ate", nil), ("bl", "ble", nil), ("iz", "ize", nil),
      ("*d", String(last), { _ in !"lsz".contains(last) }),
      ("", "e", { measure($0) == 1 && endsCVC($0) }),
    ])
  }

  static func step1c(_ w: [Character]) -> [Character] {
    apply(w, [("y", "i", { $0.count > 1 && isConsonant($0, $0.count - 1) })])
  }

  static func step2(_ w: [Character]) -> [Character] {
    if ends(w, "alli"), positive(Array(w.dropLast(4))) { return step2(Array(w.dropLast(4)) + ["a", "l"]) }
    let rules: [Rule] = [
      ("ational", "ate", positive), ("tional", "tion", positive), ("enci", "ence", positive),
      ("anci", "ance", positive), ("izer", "ize", positive), ("bli", "ble", positive), ("alli", "al", positive),
      ("entli", "ent", positive), ("eli", "e", positive), ("ousli", "ous", positive), ("ization", "ize", positive),
      ("ation", "ate", positive), ("ator", "ate", positive), ("alism", "al", positive), ("iveness", "ive", positive),
      ("fulness", "ful", positive), ("ousness", "ous", positive), ("aliti", "al", positive),
      ("iviti", "ive", positive), ("biliti", "ble", positive), ("fulli", "ful", positive),
      ("logi", "log", { _ in positive(Array(w.dropLast(3))) }),
    ]
    return apply(w, rules)
  }

  static func step3(_ w: [Character]) -> [Character] {
    apply(w, [
      ("icate", "ic", positive), ("ative", "", positive), ("alize", "al", positive), ("iciti", "ic", positive),
      ("ical", "ic", positive), ("ful", "", positive), ("ness", "", positive),
    ])
  }

  static func step4(_ w: [Character]) -> [Character] {
    let suffixes = ["al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent"]
    var rules: [Rule] = suffixes.map { ($0, "", greaterThanOne) }
    rules.append(("ion", "", { measure($0) > 1 && ($0.last == "s" || $0.last == "t") }))
    rules += ["ou", "ism", "ate", "iti", "ous", "ive", "ize"].map { ($0, "", greaterThanOne) }
    return apply(w, rules)
  }

  static func step5a(_ w: [Character]) -> [Character] {
    guard w.last == "e" else { return w }
    let stem = Array(w.dropLast())
    let m = measure(stem)
    if m > 1 || (m == 1 && !endsCVC(stem)) { return stem }
    return w
  }

  static func step5b(_ w: [Character]) -> [Character] {
    apply(w, [("ll", "l", { _ in measure(Array(w.dropLast())) > 1 })])
  }
}
