import Foundation
@testable import Training

/// The GRPO objective written out in plain Swift doubles from the formulas of spec grpo.md
/// (independent of the tensor code under test).
struct LossReference {
  var logp: [[Double]]
  var old: [[Double]]
  var ref: [[Double]]?
  var advantages: [Double]
  var mask: [[Double]]
  var tokenWeights: [[Double]]? = nil  // the entropy mask, when used
  var activeTokensGlobal = 0.0
  var worldSize = 1.0

  func loss(_ o: GRPOLossOptions) -> Double {
    let batch = logp.count
    let length = logp[0].count
    let high = o.epsilonHigh ?? o.epsilon
    var perToken = [[Double]](repeating: [Double](repeating: 0, count: length), count: batch)
    for b in 0..<batch {
      let activeCount = max(1, mask[b].reduce(0, +))
      var sequenceLogRatio = 0.0
      for t in 0..<length { sequenceLogRatio += (logp[b][t] - old[b][t]) * mask[b][t] }
      sequenceLogRatio /= activeCount
      for t in 0..<length {
        let logRatio = o.importanceSamplingLevel == .token ? logp[b][t] - old[b][t] : sequenceLogRatio
        var ratio = Foundation.exp(logRatio)
        let clipped = min(max(ratio, 1 - o.epsilon), 1 + high)
        if let delta = o.delta { ratio = min(ratio, delta) }
        var value = -min(ratio * advantages[b], clipped * advantages[b])
        if let weights = tokenWeights { value *= weights[b][t] }
        if o.beta != 0, let ref {
          let d = ref[b][t] - logp[b][t]
          value += o.beta * (Foundation.exp(d) - d - 1)
        }
        perToken[b][t] = value * mask[b][t]
      }
    }
    let accumulation = Double(o.gradientAccumulationSteps)
    let total = perToken.flatMap { $0 }.reduce(0, +)
    switch o.lossType {
    case .grpo:
      let perSequence = (0..<batch).map { perToken[$0].reduce(0, +) / max(1, mask[$0].reduce(0, +)) }
      return perSequence.reduce(0, +) / Double(batch) / accumulation
    case .bnpo:
      return total / max(1, mask.flatMap { $0 }.reduce(0, +)) / accumulation
    case .drGRPO:
      return total / Double(batch * (o.maxCompletionLength ?? 1)) / accumulation
    case .dapo:
      return total / (activeTokensGlobal / worldSize)
    }
  }

  /// d loss / d logp by central differences (old and ref held fixed).
  func finiteDifferenceGradient(_ o: GRPOLossOptions, step: Double = 1e-6) -> [[Double]] {
    var gradient = logp.map { $0.map { _ in 0.0 } }
    for b in 0..<logp.count {
      for t in 0..<logp[b].count {
        var plus = self
        plus.logp[b][t] += step
        var minus = self
        minus.logp[b][t] -= step
        gradient[b][t] = (plus.loss(o) - minus.loss(o)) / (2 * step)
      }
    }
    return gradient
  }
}
