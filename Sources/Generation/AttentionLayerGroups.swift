import Foundation

/// Named groups of decoder layers whose attention diagnostics are reported (early / middle /
/// late). `thin` (the default, as the TRL MDI fork) takes two layers at the start, the middle and
/// the end of the decoder; `thirds` splits the whole decoder in three (every layer recorded, so
/// about 6x the recording cost of `thin`). The rollout records the union of the groups' layers.
public struct AttentionLayerGroups: Sendable, Equatable {
  public struct Group: Sendable, Equatable {
    public var name: String
    public var layers: [Int]
    public init(name: String, layers: [Int]) {
      self.name = name
      self.layers = layers
    }
  }

  public var groups: [Group]

  public init(groups: [Group]) { self.groups = groups }

  /// Layers 0-1, L/2-1..L/2 and L-2..L-1 of an L-layer decoder (fewer when L < 6).
  public static func thin(layers: Int) -> AttentionLayerGroups {
    func clamp(_ values: [Int]) -> [Int] { Array(Set(values.filter { $0 >= 0 && $0 < layers })).sorted() }
    return AttentionLayerGroups(groups: [
      Group(name: "early", layers: clamp([0, 1])), Group(name: "middle", layers: clamp([layers / 2 - 1, layers / 2])),
      Group(name: "late", layers: clamp([layers - 2, layers - 1])),
    ])
  }

  /// The decoder in three consecutive parts (the first ones one layer longer when L is not a multiple of 3).
  public static func thirds(layers: Int) -> AttentionLayerGroups {
    let base = layers / 3, extra = layers % 3
    var start = 0
    var groups: [Group] = []
    for (index, name) in ["early", "middle", "late"].enumerated() {
      let size = base + (index < extra ? 1 : 0)
      groups.append(Group(name: name, layers: Array(start..<(start + size))))
      start += size
    }
    return AttentionLayerGroups(groups: groups.filter { !$0.layers.isEmpty })
  }

  /// Every layer of any group, ascending (what the engine records).
  public var allLayers: [Int] { Array(Set(groups.flatMap(\.layers))).sorted() }
}
