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


/// One sequence of a packed forward: token ids, the prompt length, the prompt's image grids and the
/// vision features of its images (`[slots, D]`, computed once per prompt and shared by every
/// completion of that prompt).
public struct PackedSequenceInput: @unchecked Sendable {
  public var ids: [Int]
  public var promptLength: Int
  public var grids: [[Int]]
  public var imageFeatures: Tensor?
  public init(ids: [Int], promptLength: Int, grids: [[Int]], imageFeatures: Tensor?) {
    self.ids = ids
    self.promptLength = promptLength
    self.grids = grids
    self.imageFeatures = imageFeatures
  }
}

extension QwenVLModel {
  /// The vision tower's features for one prompt's images, in the language model's dtype (rows in
  /// `<|image_pad|>` order).
  public func imageFeatures(pixelValues: Tensor, grids: [[Int]]) -> Tensor {
    visual(pixelValues.to(device), grids: grids).to(dtype)
  }

  /// Final hidden states `[total, D]` of sequences of any lengths packed without padding into one
  /// row: varlen flash attention on CUDA in half precision, a block-diagonal causal mask otherwise.
  /// Each sequence gets its own M-RoPE positions; image features go into its prompt's pad slots.
  public func packedHiddenStates(_ sequences: [PackedSequenceInput], checkpointLayers: Bool = false) throws -> Tensor {
    let packed = try packedEmbeddings(sequences)
    return language(embeddings: packed.embeddings.unsqueeze(0), positions: packed.positions, packed: packed.layout,
                    checkpointLayers: checkpointLayers)[0]
  }

  /// The inputs of a packed forward: token embeddings `[total, D]` with each prompt's image features in
  /// its `<|image_pad|>` slots, M-RoPE positions `[3, 1, total]` (each sequence its own), the layout and
  /// each sequence's rope delta.
  func packedEmbeddings(_ sequences: [PackedSequenceInput]) throws
    -> (embeddings: Tensor, positions: Tensor, layout: PackedLayout, deltas: [Int]) {
    let layout = PackedLayout(lengths: sequences.map(\.ids.count))
    var flat = language.embed(Tensor(sequences.flatMap(\.ids)).to(device))
    var slots: [Int] = []
    var features: [Tensor] = []
    var channels: [[Int]] = [[], [], []]
    var deltas: [Int] = []
    var offset = 0
    for sequence in sequences {
      let prompt = Array(sequence.ids.prefix(sequence.promptLength))
      let sequenceSlots = prompt.enumerated().filter { $0.element == config.imageTokenId }.map { offset + $0.offset }
      let rows = sequence.imageFeatures?.size(0) ?? 0
      guard sequenceSlots.count == rows else { throw ModelError.imageTokenMismatch(tokens: sequenceSlots.count, features: rows) }
      if let rowsOfFeatures = sequence.imageFeatures, rows > 0 {
        slots += sequenceSlots
        features.append(rowsOfFeatures)
      }
      let positions = ropePositions(promptIDs: prompt, imageGrids: sequence.grids)
      deltas.append(positions.delta)
      let all = positions.extended(by: sequence.ids.count - sequence.promptLength)
      for c in 0..<3 { channels[c] += all.channels[c] }
      offset += sequence.ids.count
    }
    if !slots.isEmpty {
      flat = flat.clone()
      flat.indexPut_([(0, Tensor(slots).to(device))], Tensor.cat(features).to(flat.dtype))
    }
    let positions = Tensor(channels.flatMap { $0 }, shape: [3, 1, layout.total]).to(device)
    return (flat, positions, layout, deltas)
  }
}
