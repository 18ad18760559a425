import Foundation

/// The body of `vlmrl tokenize --tokenizer DIR [--decode] INPUT`: a quick way to check a model
/// folder's tokenizer against Python (`tok.encode(text)` / `tok.decode(ids)`).
public enum TokenizeCommand {
  /// Encodes `input` and returns the ids as `[9707, 1879]`; with `decode`, parses ids from `input`
  /// (separated by spaces and/or commas, brackets optional) and returns the text, special tokens kept.
  public static func run(tokenizerDirectory: URL, input: String, decode: Bool) throws -> String {
    let tokenizer = try Tokenizer(directory: tokenizerDirectory)
    if decode {
      return tokenizer.decode(try parseIds(input, vocabularySize: tokenizer.vocabularySize), skipSpecialTokens: false)
    }
    return "[" + tokenizer.encode(input).map(String.init).joined(separator: ", ") + "]"
  }

  /// Parses `"[1, 2, 3]"`, `"1 2 3"` or `"1,2,3"`; every id must be in `0..<vocabularySize`.
  static func parseIds(_ input: String, vocabularySize: Int) throws -> [Int] {
    let separators = CharacterSet(charactersIn: ",[]").union(.whitespacesAndNewlines)
    let fields = input.components(separatedBy: separators).filter { !$0.isEmpty }
    return try fields.map { field in
      guard let id = Int(field) else {
        throw TokenizerError.invalidInput(
          "tokenize --decode: \"\(field)\" is not a token id (expected integers separated by spaces or commas)")
      }
      guard id >= 0, id < vocabularySize else {
        throw TokenizerError.invalidInput(
          "tokenize --decode: id \(id) is outside the vocabulary (valid ids are 0..<\(vocabularySize))")
      }
      return id
    }
  }
}
