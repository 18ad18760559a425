import Foundation
import Torch

/// One sequence of a batched forward: token ids, the prompt length (image slots and M-RoPE image
/// positions are taken from the prompt only), and the prompt's image grids.
public struct SequenceInput: Sendable {
  public var ids: [Int]
  public var promptLength: Int
  public var grids: [[Int]]
  public init(ids: [Int], promptLength: Int, grids: [[Int]]) {
    self.ids = ids
    self.promptLength = promptLength
    self.grids = grids
  }
}

extension QwenVLModel {
  /// Final hidden states `[B, L, D]` of sequences of equal length (no padding). The vision tower runs
  /// once over all images (`pixelValues` rows in sequence order).
  public func batchHiddenStates(_ sequences: [SequenceInput], pixelValues: Tensor?, checkpointLayers: Bool = false) throws -> Tensor {
    guard let length = sequences.first?.ids.count, sequences.allSatisfy({ $0.ids.count == length }) else {
      throw ModelError.unsupported("batchHiddenStates needs sequences of equal length")
    }
    let allGrids = sequences.flatMap(\.grids)
    let flatIDs = Tensor(sequences.flatMap(\.ids)).to(device)
    var flat = language.embed(flatIDs)
    if let pixelValues, !allGrids.isEmpty {
      let features = visual(pixelValues, grids: allGrids).to(flat.dtype)
      var slots: [Int] = []
      for (row, sequence) in sequences.enumerated() {
        for (offset, id) in sequence.ids.prefix(sequence.promptLength).enumerated() where id == config.imageTokenId {
          slots.append(row * length + offset)
        }
      }
      guard slots.count == features.size(0) else {
        throw ModelError.imageTokenMismatch(tokens: slots.count, features: features.size(0))
      }
      flat = flat.clone()
      flat.indexPut_([(0, Tensor(slots).to(device))], features)
    }
    let embeddings = flat.reshape(sequences.count, length, -1)
    var channels: [[Int]] = [[], [], []]
    for sequence in sequences {
      let positions = ropePositions(promptIDs: Array(sequence.ids.prefix(sequence.promptLength)), imageGrids: sequence.grids)
        .extended(by: sequence.ids.count - sequence.promptLength)
      for c in 0..<3 { channels[c] += positions.channels[c] }
    }
    let positions = Tensor(channels.flatMap { $0 }, shape: [3, sequences.count, length]).to(device)
    return language(embeddings: embeddings, positions: positions, checkpointLayers: checkpointLayers)
  }
}

