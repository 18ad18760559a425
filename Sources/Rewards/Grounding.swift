// Grounding rewards of mmkd_rl_grounding / GUI-G2 (docs/rewards.md, "Grounding").
import Common
import Foundation

/// The ground-truth and predicted boxes of single-box records.
enum SingleBox {
  /// Ground truth in original pixels: the `bbox` field, else `solution` (a 4-number list, or text
  /// holding one, possibly inside `<answer>` tags).
  static func truth(_ sample: RewardSample) -> Box? {
    for key in ["bbox", "solution"] {
      guard let value = sample.fields[key] else { continue }
      if let box = Box(json: value) { return box }
      if let text = value.stringValue, let box = AnswerParsing.firstBox(in: AnswerParsing.answer(in: text)) {
        return box
      }
    }
    return nil
  }

  /// The first 4-number box of the answer (Unicode digits and minus signs folded), converted to
  /// original pixels.
  static func predicted(_ sample: RewardSample, frame: BoxFrame) -> Box? {
    AnswerParsing.firstBox(in: AnswerParsing.answer(in: sample.completion))
      .map { frame.toOriginal($0, image: sample.images.first) }
  }
}

enum GroundingRewards {
  /// `format`: the trimmed answer is exactly `[x1, y1, x2, y2]`.
  static func format(_ p: RewardParameters) throws -> any RewardFunction {
    let allowDecimals = try p.bool("allow_decimals", default: false)
    return SampleReward(name: p.reward) { sample in
      AnswerParsing.isBareBox(AnswerParsing.answer(in: sample.completion), allowDecimals: allowDecimals) ? 1 : 0
    }
  }

  /// `gaussian_point` / `gaussian_plane` on the single predicted box; nil without a ground truth.
  static func gaussian(_ p: RewardParameters, plane: Bool) throws -> any RewardFunction {
    let frame = try p.frame()
    let alpha = try p.double("alpha", default: 0.5)
    return SampleReward(name: p.reward) { sample in
      guard let truth = SingleBox.truth(sample) else { return nil }
      guard let predicted = SingleBox.predicted(sample, frame: frame) else { return 0 }
      return plane
        ? BoxMath.gaussianPlane(predicted: predicted, truth: truth, alpha: alpha)
        : BoxMath.gaussianPoint(predicted: predicted, truth: truth, alpha: alpha)
    }
  }

  /// `multi_box_format_reward`: the answer parses into label -> list of boxes (`MultiBox.predicted`,
  /// the same parser `multi_gaussian_*` score).
  static func multiFormat(_ p: RewardParameters) throws -> any RewardFunction {
    SampleReward(name: p.reward) { sample in
      let truthLabels = MultiBox.truth(sample).map { Array($0.keys) }
      return MultiBox.predicted(sample.completion, truthLabels: truthLabels) == nil ? 0 : 1
    }
  }

  /// `multi_gaussian_point` / `multi_gaussian_plane`: Hungarian-matched per-label Gaussian scores.
  static func multiGaussian(_ p: RewardParameters, plane: Bool) throws -> any RewardFunction {
    let frame = try p.frame()
    let alpha = try p.double("alpha", default: 0.5)
    let matchIoU = try p.double("match_iou", default: 0.5)
    return SampleReward(name: p.reward) { sample in
      guard let truth = MultiBox.truth(sample) else { return nil }
      guard let predicted = MultiBox.predicted(sample.completion, truthLabels: Array(truth.keys)) else { return 0 }
      let image = sample.images.first
      let converted = predicted.mapValues { boxes in boxes.map { frame.toOriginal($0, image: image) } }
      let pair: (Box, Box) -> Double = { predictedBox, truthBox in
        plane
          ? BoxMath.gaussianPlane(predicted: predictedBox, truth: truthBox, alpha: alpha)
          : BoxMath.gaussianPoint(predicted: predictedBox, truth: truthBox, alpha: alpha)
      }
      return MultiBox.score(predicted: converted, truth: truth, matchIoU: matchIoU, pairScore: pair)
    }
  }
}

/// Label -> boxes mappings of multi-box records (`abs_box`) and answers.
public enum MultiBox {
  /// The record's `abs_box` (label -> list of boxes, original pixels); nil when absent or malformed.
  public static func truth(_ sample: RewardSample) -> [String: [Box]]? {
    guard let value = sample.fields["abs_box"] else { return nil }
    let parsed = value.stringValue.flatMap { LiteralParser.parse(NumericText.fold($0)) } ?? value
    return mapping(parsed, truthLabels: nil, strict: false)
  }

  /// The boxes of a multi-box answer: the one parser behind `multi_box_format_reward` and
  /// `multi_gaussian_*`, so an answer the format reward accepts is exactly one the Gaussian rewards
  /// can score. The answer (`<answer>` content, else the completion; Unicode digits and minus signs
  /// folded; a Markdown code fence removed) must parse as a whole, as JSON or a Python literal, into
  /// label -> list of 4-number lists, or a bare list of such lists when the truth has one label;
  /// at most `RewardLimits.boxes` boxes in all. Else nil.
  public static func predicted(_ completion: String, truthLabels: [String]?) -> [String: [Box]]? {
    let text = LiteralParser.stripCodeFence(NumericText.fold(AnswerParsing.answer(in: completion)))
    guard let value = LiteralParser.parse(text), let boxes = mapping(value, truthLabels: truthLabels, strict: true),
      boxes.values.reduce(0, { $0 + $1.count }) <= RewardLimits.boxes
    else { return nil }
    return boxes
  }

  /// Reads label -> list of 4-number lists. A bare list of boxes counts as label "0" when the
  /// ground truth has a single label. `strict` requires every value to be a list of boxes; otherwise
  /// a single box as a value is accepted too.
  public static func mapping(_ value: JSONValue, truthLabels: [String]?, strict: Bool) -> [String: [Box]]? {
    if let list = value.arrayValue {
      guard let labels = truthLabels, labels.count == 1, let boxes = boxList(.array(list), strict: strict)
      else { return nil }
      return [labels[0]: boxes]
    }
    guard let object = value.objectValue else { return nil }
    var result: [String: [Box]] = [:]
    for (key, item) in object {
      guard let boxes = boxList(item, strict: strict) else { return nil }
      result[normalizedLabel(key), default: []].append(contentsOf: boxes)
    }
    return result
  }

  static func boxList(_ value: JSONValue, strict: Bool) -> [Box]? {
    guard let items = value.arrayValue else { return nil }
    if !strict, let single = Box(json: value) { return [single] }
    var boxes: [Box] = []
    for item in items {
      guard let box = Box(json: item) else { return nil }
      boxes.append(box)
    }
    return boxes
  }

  /// "0", " 0", "00" and 0 name the same label.
  static func normalizedLabel(_ key: String) -> String {
    let trimmed = key.trimmed
    if let number = Int(trimmed) { return String(number) }
    return trimmed
  }

  /// Mean over the union of labels of `2 * sum(pairScore over matched pairs) / (n_truth + n_pred)`,
  /// pairs from the Hungarian assignment on `1 - IoU` with IoU >= `matchIoU`; a label empty on
  /// both sides scores 1 (as does an empty mapping on both sides).
  public static func score(
    predicted: [String: [Box]], truth: [String: [Box]], matchIoU: Double,
    pairScore: (Box, Box) -> Double
  ) -> Double {
    let labels = Set(predicted.keys.map(normalizedLabel)).union(truth.keys.map(normalizedLabel))
    guard !labels.isEmpty else { return 1 }
    var total = 0.0
    for label in labels {
      let predictedBoxes = predicted[label] ?? []
      let truthBoxes = truth[label] ?? []
      let count = predictedBoxes.count + truthBoxes.count
      guard count > 0 else {
        total += 1
        continue
      }
      guard !predictedBoxes.isEmpty, !truthBoxes.isEmpty else { continue }
      let iou = predictedBoxes.map { p in truthBoxes.map { BoxMath.iou(p, $0) } }
      let cost = iou.map { row in row.map { 1 - $0 } }
      var matched = 0.0
      for pair in Hungarian.assign(cost) where iou[pair.row][pair.column] >= matchIoU {
        matched += pairScore(predictedBoxes[pair.row], truthBoxes[pair.column])
      }
      total += 2 * matched / Double(count)
    }
    return total / Double(labels.count)
  }
}
