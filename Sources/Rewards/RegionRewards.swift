// Region rewards of the Sa2VA plan: `box_iou`, `mask_iou` (docs/rewards.md, "Region <-> caption").
import Common
import Foundation

enum RegionRewards {
  /// `box_iou`: IoU of the answer's box with `bbox` / `solution` (same frames as `iou`).
  static func boxIoU(_ p: RewardParameters) throws -> any RewardFunction {
    try R1Rewards.iou(p, threshold: nil)
  }

  /// `mask_iou`: the answer holds a COCO RLE object, a list of polygons or one flat polygon; the
  /// record's `mask_rle` holds the truth. Sizes come from the truth's RLE or the first image.
  static func maskIoU(_ p: RewardParameters) throws -> any RewardFunction {
    SampleReward(name: p.reward) { sample in
      guard let truthValue = sample.fields["mask_rle"] else { return nil }
      let image = sample.images.first
      guard let truth = mask(from: truthValue, height: image?.originalHeight, width: image?.originalWidth)
      else { return nil }
      guard let parsed = LiteralParser.parseLenient(NumericText.fold(AnswerParsing.answer(in: sample.completion))),
        let predicted = mask(from: parsed, height: truth.height, width: truth.width)
      else { return 0 }
      return RLEMask.iou(predicted, truth)
    }
  }

  /// A mask from an RLE object, a list of RLE objects (union), polygons `[[x, y, ...], ...]` or one
  /// flat polygon; polygons need the size.
  static func mask(from value: JSONValue, height: Int?, width: Int?) -> RLEMask? {
    if let text = value.stringValue, let inner = LiteralParser.parse(text) {
      return mask(from: inner, height: height, width: width)
    }
    if value.objectValue != nil { return RLEMask(json: value) }
    guard let items = value.arrayValue, items.count <= RewardLimits.maskParts else { return nil }
    if items.allSatisfy({ $0.objectValue != nil }), let first = items.first.flatMap(RLEMask.init(json:)) {
      var merged = first
      for item in items.dropFirst() {
        guard let next = RLEMask(json: item), next.height == first.height, next.width == first.width else { return nil }
        merged = RLEMask.union(merged, next)
      }
      return merged
    }
    guard let height, let width, height > 0, width > 0, height <= 1 << 15, width <= 1 << 15 else { return nil }
    var polygons: [[Double]] = []
    if let flat = numbers(items) {
      polygons = [flat]
    } else {
      for item in items {
        guard let polygon = item.arrayValue.flatMap(numbers) else { return nil }
        polygons.append(polygon)
      }
    }
    // Rasterizing costs one point per upsampled pixel of outline: a polygon with far-away vertices
    // would cost gigabytes, so past the budget the answer is not a valid mask.
    guard polygons.reduce(0.0, { $0 + RLEMask.outlinePoints($1) }) <= Double(RewardLimits.polygonOutlinePoints)
    else { return nil }
    return RLEMask(height: height, width: width, polygons: polygons)
  }

  private static func numbers(_ items: [JSONValue]) -> [Double]? {
    let values = items.compactMap(\.doubleValue)
    return values.count == items.count && values.count >= 6 && values.count % 2 == 0 ? values : nil
  }
}
