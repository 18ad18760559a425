import Foundation
import Generation
import Testing
@testable import Models
@testable import Torch

@Suite struct AttentionMassTests {
  /// Layer 0's attention of the first generated token (fed at position L) over the prompt and
  /// itself, recomputed from the layer's own projections with plain Swift arithmetic: the recorded
  /// text and image masses of token 1 (the token that query produced) must match it.
  @Test func recordedMassMatchesLayerZeroAttention() throws {
    let model = try tinyRandomModel()
    let request = tinyRequests(seeds: [1], samples: 1)[0]
    let settings = SamplingSettings(maxNewTokens: 4, temperature: 0, recordAttentionLayers: [0])
    let completion = try #require(try RolloutEngine(model: model).generate([request], settings: settings).completions.first)
    let mass = try #require(completion.attention)
    #expect(mass.textMass.count == completion.tokens.count - 1 && mass.visionMass.count == completion.tokens.count - 1)

    let prompt = request.promptIDs, length = prompt.count
    let ids = prompt + [completion.tokens[0]]
    let (queries, keys) = try withNoGrad { () -> ([Double], [Double]) in
      let embeddings = try model.embed(ids: ids, promptLength: length, pixelValues: request.pixelValues, grids: request.grids)
      let positions = model.ropePositions(promptIDs: prompt, imageGrids: request.grids).extended(by: 1)
      let (cos, sin) = model.language.rotary(positions: Tensor(positions.channels.flatMap { $0 }, shape: [3, 1, length + 1]),
                                             dtype: .float64)
      func rotate(_ t: Tensor) -> Tensor { t * cos.unsqueeze(1) + rotateHalf(t) * sin.unsqueeze(1) }
      let layer = model.language.layers[0]
      let x = layer.inputNorm(embeddings)
      let q = rotate(layer.attention.q(x).view(1, length + 1, 4, 16).transpose(1, 2))  // [1, 4, L+1, 16]
      let k = rotate(layer.attention.k(x).view(1, length + 1, 2, 16).transpose(1, 2))  // [1, 2, L+1, 16]
      return (q[0, TensorIndex.all, -1].contiguous().doubles(), k[0].contiguous().doubles())
    }
    var text = 0.0, vision = 0.0
    for head in 0..<4 {
      let kvHead = head / 2  // two query heads per key/value head
      let scores = (0...length).map { key in
        (0..<16).reduce(0.0) { $0 + queries[head * 16 + $1] * keys[(kvHead * (length + 1) + key) * 16 + $1] } / 4.0
      }
      let top = scores.max()!
      let weights = scores.map { exp($0 - top) }
      let total = weights.reduce(0, +)
      for key in 0..<length {
        if prompt[key] == 95 { vision += weights[key] / total / 4 } else { text += weights[key] / total / 4 }
      }
    }
    #expect(Swift.abs(Double(mass.textMass[0]) - text) < 1e-5, "text \(mass.textMass[0]) vs \(text)")
    #expect(Swift.abs(Double(mass.visionMass[0]) - vision) < 1e-5, "vision \(mass.visionMass[0]) vs \(vision)")
    #expect(vision > 0.01 && text > 0.01)
    #expect(zip(mass.textMass, mass.visionMass).allSatisfy { $0 + $1 <= 1 + 1e-5 })
  }

  @Test func textOnlyPromptPutsNoMassOnImages() throws {
    let model = try tinyRandomModel()
    let request = tinyRequests(seeds: [1, 2], samples: 1)[1]
    let settings = SamplingSettings(maxNewTokens: 5, temperature: 0, recordAttentionLayers: [0, 1])
    let completion = try #require(try RolloutEngine(model: model).generate([request], settings: settings).completions.first)
    let mass = try #require(completion.attention)
    #expect(mass.visionMass.allSatisfy { $0 == 0 })
    #expect(mass.textMass.allSatisfy { $0 > 0 && $0 <= 1 + 1e-6 })
  }
}
