// Input sizes past which a reward stops looking, so that no completion (a 14 MB runaway, a wall of
// brackets) can make scoring slow or deep (docs/rewards.md, "Limits").
import Foundation

/// The caps of the rewards whose cost would otherwise grow faster than the completion's length or
/// that spend per-token work far beyond any real answer. Past a cap the reward gives its "no valid
/// answer" value (0), never an error.
public enum RewardLimits {
  /// `accuracy`: an answer or a reference longer than this many UTF-8 bytes is not compared (0).
  public static let mathAnswerBytes = 4096
  /// `meteor` / `caption`: a description longer than this many tokens scores 0 for METEOR; a
  /// reference is cut to its first this-many tokens.
  public static let meteorTokens = 2048
  /// Multi-box answers (`multi_*`): more boxes than this in all is not a valid answer (0); bounds
  /// the Hungarian matching.
  public static let boxes = 1024
  /// `mask_iou`: more polygons or RLE objects than this in one answer is not a valid answer (0).
  public static let maskParts = 256
  /// `mask_iou`: a polygon answer whose rasterized outline (5x upsampled, as pycocotools) would
  /// have more points than this is not a valid answer (0).
  public static let polygonOutlinePoints = 1 << 22
  /// `llm_judge`: the description sent to the judge is cut to this many characters.
  public static let judgeDescriptionCharacters = 16_384
}

/// The one Unicode folding of every numeric reward (boxes, counting, accuracy, multiple choice,
/// masks): full-width ASCII (`［１２，３４］`, `Ａ`, `（`) to ASCII, every Unicode decimal digit
/// (Arabic-Indic, Devanagari, full-width, mathematical...) to `0`-`9`, the minus-like dashes
/// (U+2212 minus sign, U+2012/2013 figure and en dash, U+FE63, U+FF0D) to `-`, and Unicode spaces
/// (no-break, thin, ideographic...) to a plain space. ASCII text is returned unchanged at once.
public enum NumericText {
  public static func fold(_ text: String) -> String {
    if text.utf8.allSatisfy({ $0 < 0x80 }) { return text }
    var scalars = String.UnicodeScalarView()
    scalars.reserveCapacity(text.unicodeScalars.count)
    for scalar in text.unicodeScalars { scalars.append(fold(scalar)) }
    return String(scalars)
  }

  static func fold(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
    let value = scalar.value
    if value < 0x80 { return scalar }
    switch value {
    case 0x2212, 0x2012, 0x2013, 0xFE63, 0xFF0D: return "-"
    case 0xFF01...0xFF5E: return Unicode.Scalar(value - 0xFEE0) ?? scalar
    case 0x3000, 0x00A0, 0x2000...0x200A, 0x202F, 0x205F: return " "
    default: break
    }
    let properties = scalar.properties
    if properties.numericType == .decimal, let digit = properties.numericValue, digit >= 0, digit <= 9 {
      return Unicode.Scalar(UInt8(48 + Int(digit)))
    }
    return scalar
  }
}
