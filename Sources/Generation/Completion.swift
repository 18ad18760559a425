import Foundation

/// One generated completion.
public struct Completion: Sendable {
  public var requestIndex: Int
  public var sampleIndex: Int
  public var tokens: [Int]
  /// true when it ended with an EOS id, false when truncated at `maxNewTokens`.
  public var finished: Bool
  /// log-probability of each token under the distribution it was sampled from (after every filter
  /// and the temperature); at temperature 0, under softmax of the processed logits.
  public var logProbs: [Float]
  public var attention: AttentionMass?
}

/// Attention mass (heads averaged) of the decode queries on the prompt's text tokens and on its
/// image tokens, per recorded layer; the rest went to completion tokens. Entry `i` belongs to the
/// decode query that produced token `i + 1` (token 0 comes from the prefill, which does not record),
/// so each array has `tokens.count - 1` entries.
public struct AttentionMass: Sendable, Equatable {
  /// The recorded layers, ascending.
  public var layers: [Int]
  /// `layerTextMass[l][i]`: layer `layers[l]`'s mass on prompt text for entry `i`.
  public var layerTextMass: [[Float]]
  public var layerVisionMass: [[Float]]

  public init(layers: [Int], layerTextMass: [[Float]], layerVisionMass: [[Float]]) {
    self.layers = layers
    self.layerTextMass = layerTextMass
    self.layerVisionMass = layerVisionMass
  }

  /// From host copies of `[rows, columns, layers]` buffers: the entries `steps` (flat row-major
  /// `row * columns + column` positions) of each layer.
  init(layers: [Int], text: [Float], vision: [Float], steps: Range<Int>) {
    let count = layers.count
    self.layers = layers
    layerTextMass = (0..<count).map { layer in steps.map { text[$0 * count + layer] } }
    layerVisionMass = (0..<count).map { layer in steps.map { vision[$0 * count + layer] } }
  }

  /// Per entry, averaged over the recorded layers.
  public var textMass: [Float] { Self.layerMean(layerTextMass) }
  public var visionMass: [Float] { Self.layerMean(layerVisionMass) }

  /// The mass of the layers `subset` (those recorded), per entry, averaged over them.
  public func textMass(layers subset: [Int]) -> [Float] { Self.layerMean(rows(layerTextMass, subset)) }
  public func visionMass(layers subset: [Int]) -> [Float] { Self.layerMean(rows(layerVisionMass, subset)) }

  func rows(_ values: [[Float]], _ subset: [Int]) -> [[Float]] {
    subset.compactMap { layers.firstIndex(of: $0).map { values[$0] } }
  }

  static func layerMean(_ values: [[Float]]) -> [Float] {
    guard let first = values.first else { return [] }
    return first.indices.map { entry in values.reduce(Float(0)) { $0 + $1[entry] } / Float(values.count) }
  }
}
