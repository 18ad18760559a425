import Foundation
import Testing
import Torch
@testable import Training

@Suite struct GRPOLossTests {
  // Two sequences of 4 tokens; the second has 2 active tokens. Log-ratios up to ±0.5 so that both
  // clip sides are hit with epsilon 0.2.
  static let logp: [[Double]] = [[-1.0, -0.5, -2.0, -0.3], [-0.7, -1.2, -0.4, -0.9]]
  static let old: [[Double]] = [[-1.3, -0.5, -1.5, -0.35], [-0.2, -1.25, -0.4, -0.9]]
  static let ref: [[Double]] = [[-1.1, -0.4, -2.5, -0.3], [-0.6, -1.0, -0.4, -0.9]]
  static let mask: [[Double]] = [[1, 1, 1, 1], [1, 1, 0, 0]]
  static let advantages = [0.8, -1.1]

  static func tensor(_ rows: [[Double]]) -> Tensor { Tensor(rows.flatMap { $0 }, shape: [rows.count, rows[0].count]) }

  static func run(_ options: GRPOLossOptions, logp: [[Double]] = logp, old: [[Double]]? = old,
                  withRef: Bool = true, activeTokensGlobal: Double? = nil) throws -> (Double, GRPOLossMetrics, [Double]) {
    let logpTensor = tensor(logp).requiresGrad_()
    let inputs = GRPOLossInputs(logp: logpTensor, oldLogp: old.map(tensor), refLogp: withRef ? tensor(ref) : nil,
                                advantages: advantages, completionMask: tensor(mask),
                                activeTokensGlobal: activeTokensGlobal)
    let (loss, metrics) = try GRPOLoss.compute(inputs, options: options)
    loss.backward()
    let gradient = try #require(logpTensor.grad).doubles()
    return (loss.item(), metrics, gradient)
  }

  static var reference: LossReference {
    LossReference(logp: logp, old: old, ref: ref, advantages: advantages, mask: mask, activeTokensGlobal: 9)
  }

  @Test func onPolicyGRPOWithoutKLIsMinusMeanAdvantage() throws {
    // ratio = 1 everywhere: each sequence's loss is -A, the mean over the two is -(0.8 - 1.1) / 2.
    let (loss, metrics, gradient) = try Self.run(GRPOLossOptions(beta: 0), old: nil, withRef: false)
    #expect(abs(loss - 0.15) < 1e-12)
    #expect(metrics.kl == nil && metrics.clipRatioRegion == 0)
    // d/dlogp of exp(logp - sg(logp)) * A is A: gradient -A / length / batch on active tokens.
    let expected: [Double] = [-0.1, -0.1, -0.1, -0.1, 0.275, 0.275, 0, 0]
    for (g, e) in zip(gradient, expected) { #expect(abs(g - e) < 1e-12) }
  }

  @Test func k3KLTermByHand() throws {
    // Advantages 0 leave only beta * KL. Token (0,0): d = -0.1, e^d - d - 1 = 0.0048374180359595.
    let inputs = GRPOLossInputs(logp: Self.tensor([[-1.0]]), refLogp: Self.tensor([[-1.1]]), advantages: [0],
                                completionMask: Self.tensor([[1]]))
    let (loss, metrics) = try GRPOLoss.compute(inputs, options: GRPOLossOptions(beta: 0.5))
    let kl = Foundation.exp(-0.1) + 0.1 - 1
    #expect(abs(loss.item() - 0.5 * kl) < 1e-12)
    #expect(abs((metrics.kl ?? 0) - kl) < 1e-12)
  }

  @Test(arguments: LossType.allCases, ImportanceSamplingLevel.allCases)
  func lossMatchesReferenceAndFiniteDifferences(type: LossType, level: ImportanceSamplingLevel) throws {
    let options = GRPOLossOptions(lossType: type, importanceSamplingLevel: level, epsilon: 0.2, epsilonHigh: 0.28,
                                  beta: 0.04, maxCompletionLength: 6, gradientAccumulationSteps: 2)
    let (loss, _, gradient) = try Self.run(options, activeTokensGlobal: 9)
    let reference = Self.reference
    #expect(abs(loss - reference.loss(options)) < 1e-12)
    let expected = reference.finiteDifferenceGradient(options).flatMap { $0 }
    for (g, e) in zip(gradient, expected) { #expect(abs(g - e) < 1e-7, "\(type) \(level): \(gradient) vs \(expected)") }
  }

  @Test func twoSidedClipWithDelta() throws {
    // Token (1,1) gets log-ratio 0.5 (ratio 1.65) with a negative advantage: PPO's min keeps the
    // unclipped ratio there, and delta = 1.3 caps it (so no gradient flows through it).
    var old = Self.old
    old[1][1] = -1.7
    let options = GRPOLossOptions(epsilon: 0.2, delta: 1.3, beta: 0)
    let (loss, _, gradient) = try Self.run(options, old: old, withRef: false)
    var reference = Self.reference
    reference.old = old
    reference.ref = nil
    #expect(abs(loss - reference.loss(options)) < 1e-12)
    let uncapped = try Self.run(GRPOLossOptions(epsilon: 0.2, beta: 0), old: old, withRef: false).0
    // The capped token's loss is -1.3 * A / 2 / 2 instead of -exp(0.5) * A / 2 / 2.
    #expect(abs((uncapped - loss) - (Foundation.exp(0.5) - 1.3) * 1.1 / 4) < 1e-12)
    #expect(abs(gradient[5]) < 1e-12)
  }

  @Test func clipRatioMetricsCountTheClippedTokens() throws {
    // Row 0 (A > 0) ratios [e^.3, 1, e^-.5, e^.05]: e^.3 = 1.35 > 1.2 is high-clipped.
    // Row 1 (A < 0) active ratios [e^-.5, e^.05]: e^-.5 = 0.61 < 0.8 is low-clipped. 6 active tokens.
    let (_, metrics, _) = try Self.run(GRPOLossOptions(epsilon: 0.2, beta: 0), withRef: false)
    #expect(abs(metrics.clipRatioHigh - 1.0 / 6) < 1e-12)
    #expect(abs(metrics.clipRatioLow - 1.0 / 6) < 1e-12)
    #expect(abs(metrics.clipRatioRegion - 2.0 / 6) < 1e-12)
    // A low ratio with a positive advantage is not counted: row 0's e^-.5 stays out of clip_ratio/low.
    let wide = try Self.run(GRPOLossOptions(epsilon: 0.2, epsilonHigh: 0.4, beta: 0), withRef: false).1
    #expect(wide.clipRatioHigh == 0)
    #expect(abs(wide.clipRatioRegion - 1.0 / 6) < 1e-12)
    var onPolicyRow1 = Self.old
    onPolicyRow1[1][0] = -0.7
    let onlyPositiveLow = try Self.run(GRPOLossOptions(epsilon: 0.2, beta: 0), old: onPolicyRow1, withRef: false).1
    #expect(onlyPositiveLow.clipRatioLow == 0)
  }

  @Test func dapoSharesTheGlobalTokenCountAcrossRanks() throws {
    // Two ranks: each rank's normalizer is half the global count, so its loss doubles.
    let options = GRPOLossOptions(lossType: .dapo, beta: 0.04)
    func loss(worldSize: Int) throws -> Double {
      let inputs = GRPOLossInputs(logp: Self.tensor(Self.logp), oldLogp: Self.tensor(Self.old), refLogp: Self.tensor(Self.ref),
                                  advantages: Self.advantages, completionMask: Self.tensor(Self.mask),
                                  activeTokensGlobal: 12, worldSize: worldSize)
      return try GRPOLoss.compute(inputs, options: options).loss.item()
    }
    var reference = Self.reference
    reference.activeTokensGlobal = 12
    #expect(abs(try loss(worldSize: 1) - reference.loss(options)) < 1e-12)
    #expect(abs(try loss(worldSize: 2) - 2 * reference.loss(options)) < 1e-12)
  }

  @Test func float32InputsMatchTheReference() throws {
    // The trainer passes float32 (or bf16) log-probs; the loss keeps their dtype.
    let options = GRPOLossOptions(importanceSamplingLevel: .sequence, epsilon: 0.2, delta: 1.5, beta: 0.04)
    func float(_ rows: [[Double]]) -> Tensor { Self.tensor(rows).to(.float32) }
    let inputs = GRPOLossInputs(logp: float(Self.logp), oldLogp: float(Self.old), refLogp: float(Self.ref),
                                advantages: Self.advantages, completionMask: float(Self.mask))
    let loss = try GRPOLoss.compute(inputs, options: options).loss
    #expect(loss.dtype == .float32)
    #expect(abs(loss.item() - Self.reference.loss(options)) < 1e-6)
  }

  @Test func sequenceLevelClipMetricsAreMeansOverSequences() throws {
    // Sequence log-ratios: row 0 (0.3 + 0 - 0.5 + 0.05) / 4 = -0.0375; row 1 (-0.5 + 0.05) / 2 = -0.225.
    // Row 1: ratio e^-0.225 = 0.7985 < 0.9 with A < 0: low-clipped; row 0 (0.963, A > 0) is not.
    let options = GRPOLossOptions(importanceSamplingLevel: .sequence, epsilon: 0.1, beta: 0)
    let (_, metrics, _) = try Self.run(options, withRef: false)
    #expect(metrics.clipRatioLow == 0.5)
    #expect(metrics.clipRatioHigh == 0)
  }

  @Test func highEntropyMaskKeepsTheTopQuantile() throws {
    // Active entropies [0.1, 0.5, 0.9, 0.3, 0.7]; the 0.6 quantile by linear interpolation is
    // 0.1 + ... sorted [0.1, 0.3, 0.5, 0.7, 0.9], position 2.4 -> 0.5 + 0.4 * 0.2 = 0.58.
    let entropies = Self.tensor([[0.1, 0.5, 0.9, 0.0], [0.3, 0.7, 2.0, 2.0]])
    let mask = Self.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    #expect(abs((GRPOLoss.quantile([0.1, 0.5, 0.9, 0.3, 0.7], 0.6) ?? 0) - 0.58) < 1e-12)
    let selected = GRPOLoss.highEntropyMask(entropies: entropies, mask: mask, threshold: 0.6).bools()
    #expect(selected == [false, false, true, false, false, true, false, false])
  }

  @Test func topEntropyQuantileTrainsOnlyTheSelectedTokens() throws {
    let entropies = Self.tensor([[0.1, 0.5, 0.9, 0.2], [0.3, 0.7, 0, 0]])
    let logpTensor = Self.tensor(Self.logp).requiresGrad_()
    let options = GRPOLossOptions(epsilon: 0.2, beta: 0.04, topEntropyQuantile: 0.5)
    let inputs = GRPOLossInputs(logp: logpTensor, oldLogp: Self.tensor(Self.old), refLogp: Self.tensor(Self.ref),
                                advantages: Self.advantages, completionMask: Self.tensor(Self.mask), entropies: entropies)
    let (loss, metrics) = try GRPOLoss.compute(inputs, options: options)
    // Quantile 0.5 of [0.1, 0.5, 0.9, 0.2, 0.3, 0.7] is 0.4: tokens with entropy >= 0.4 keep the
    // policy term; the KL term stays on every token (as in TRL).
    var reference = Self.reference
    reference.tokenWeights = [[0, 1, 1, 0], [0, 1, 0, 0]]
    #expect(abs(loss.item() - reference.loss(options)) < 1e-12)
    #expect(abs((metrics.entropy ?? 0) - 2.7 / 6) < 1e-12)
  }

  @Test(arguments: [LossType.grpo, .drGRPO, .dapo])
  func oneByEightEqualsEightByOne(type: LossType) throws {
    let batch = 8
    let length = 5
    let lengths = [5, 3, 1, 4, 2, 5, 3, 4]
    var logp: [[Double]] = []
    var old: [[Double]] = []
    var ref: [[Double]] = []
    var mask: [[Double]] = []
    for b in 0..<batch {
      let row: [Double] = (0..<length).map { t in -0.1 * Double(b + 1) - 0.07 * Double(t) }
      logp.append(row)
      old.append(row.indices.map { t in row[t] + 0.03 * Double((b + t) % 5) - 0.06 })
      ref.append(row.map { $0 - 0.05 })
      mask.append((0..<length).map { t in t < lengths[b] ? 1.0 : 0.0 })
    }
    let advantages: [Double] = (0..<batch).map { Double($0) * 0.3 - 1 }
    let activeTokens = Double(lengths.reduce(0, +))
    func gradient(micro: Int) throws -> [Double] {
      let options = GRPOLossOptions(lossType: type, beta: 0.04, maxCompletionLength: length,
                                    gradientAccumulationSteps: batch / micro)
      var total = [Double](repeating: 0, count: batch * length)
      for start in stride(from: 0, to: batch, by: micro) {
        let rows = start..<(start + micro)
        let logpTensor = Self.tensor(Array(logp[rows])).requiresGrad_()
        let inputs = GRPOLossInputs(logp: logpTensor, oldLogp: Self.tensor(Array(old[rows])),
                                    refLogp: Self.tensor(Array(ref[rows])), advantages: Array(advantages[rows]),
                                    completionMask: Self.tensor(Array(mask[rows])), activeTokensGlobal: activeTokens)
        try GRPOLoss.compute(inputs, options: options).loss.backward()
        let micrograd: [Double] = try #require(logpTensor.grad).doubles()
        for i in micrograd.indices { total[start * length + i] += micrograd[i] }
      }
      return total
    }
    let accumulated = try gradient(micro: 1)
    let whole = try gradient(micro: 8)
    for (a, w) in zip(accumulated, whole) { #expect(abs(a - w) < 1e-12) }
  }

  @Test func bnpoInvarianceHoldsOnlyForEqualLengths() throws {
    // bnpo normalizes by each micro-batch's own token count, so 1 x 8 differs from 8 x 1 when
    // completion lengths differ (the same holds in TRL).
    func loss(lengths: [Int], micro: Int) throws -> Double {
      let logp: [[Double]] = lengths.indices.map { b in (0..<4).map { t in -0.2 * Double(b + t + 1) } }
      let mask: [[Double]] = lengths.map { n in (0..<4).map { t in t < n ? 1.0 : 0.0 } }
      let advantages: [Double] = lengths.indices.map { Double($0) - 1.0 }
      let options = GRPOLossOptions(lossType: .bnpo, beta: 0, gradientAccumulationSteps: lengths.count / micro)
      var total = 0.0
      for start in stride(from: 0, to: lengths.count, by: micro) {
        let rows = start..<(start + micro)
        let inputs = GRPOLossInputs(logp: Self.tensor(Array(logp[rows])), advantages: Array(advantages[rows]),
                                    completionMask: Self.tensor(Array(mask[rows])))
        total += try GRPOLoss.compute(inputs, options: options).loss.item()
      }
      return total
    }
    #expect(abs(try loss(lengths: [4, 4, 4, 4], micro: 1) - loss(lengths: [4, 4, 4, 4], micro: 4)) < 1e-12)
    #expect(abs(try loss(lengths: [4, 1, 2, 4], micro: 1) - loss(lengths: [4, 1, 2, 4], micro: 4)) > 1e-3)
  }

  @Test func missingInputsAreErrors() {
    let logp = Self.tensor(Self.logp)
    let mask = Self.tensor(Self.mask)
    #expect(throws: TrainingError.self) {
      try GRPOLoss.compute(GRPOLossInputs(logp: logp, advantages: Self.advantages, completionMask: mask),
                           options: GRPOLossOptions(beta: 0.04))
    }
    #expect(throws: TrainingError.self) {
      try GRPOLoss.compute(GRPOLossInputs(logp: logp, advantages: [1], completionMask: mask),
                           options: GRPOLossOptions(beta: 0))
    }
    #expect(throws: TrainingError.self) {
      try GRPOLoss.compute(GRPOLossInputs(logp: logp, advantages: Self.advantages, completionMask: mask),
                           options: GRPOLossOptions(lossType: .dapo, beta: 0))
    }
  }
}
