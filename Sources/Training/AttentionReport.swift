import Common
import Foundation
import Generation
import Prompting
import Rewards

/// The attention diagnostics of a training run (`compute_attention_metrics`, the TRL MDI fork's
/// live diagnostics): the layer groups, per-step metrics and the per-step Markdown log.
public enum AttentionReport {
  /// The groups `attention_layer_groups` names for an L-layer decoder.
  public static func groups(_ setting: JSONValue, layers: Int) throws -> AttentionLayerGroups {
    switch setting {
    case .string("thin"): return .thin(layers: layers)
    case .string("thirds"): return .thirds(layers: layers)
    case .object(let named):
      var groups: [AttentionLayerGroups.Group] = []
      for (name, value) in named.sorted(by: { $0.key < $1.key }) {
        guard let list = value.arrayValue?.compactMap(\.intValue), list.count == value.arrayValue?.count, !list.isEmpty else {
          throw TrainingError.invalidArgument("training.attention_layer_groups.\(name): expected a non-empty list of layer indices")
        }
        if let bad = list.first(where: { $0 < 0 || $0 >= layers }) {
          throw TrainingError.invalidArgument("training.attention_layer_groups.\(name): layer \(bad) is outside 0..<\(layers)")
        }
        groups.append(.init(name: name, layers: list))
      }
      guard !groups.isEmpty else { throw TrainingError.invalidArgument("training.attention_layer_groups: no group given") }
      return AttentionLayerGroups(groups: groups)
    default:
      throw TrainingError.invalidArgument("training.attention_layer_groups: expected \"thin\", \"thirds\" or an object of layer lists, got \(setting)")
    }
  }

  /// `attention/<measure>/mean|std` over all recorded layers and `attention/<group>/<measure>/mean|std`
  /// per group, for the generation phase; measures `mdi`, `aei_text`, `aei_vision`, `text_share`.
  public static func metrics(_ records: [RolloutRecord]) -> [String: Double] {
    var metrics: [String: Double] = [:]
    func add(_ prefix: String, _ values: [AttentionDiagnostics]) {
      let measures: [(String, (AttentionDiagnostics) -> Double?)] = [
        ("mdi", \.mdi), ("aei_text", \.aeiText), ("aei_vision", \.aeiVision), ("text_share", { $0.textMass }),
      ]
      for (name, measure) in measures {
        let present = values.compactMap(measure).filter(\.isFinite)
        guard !present.isEmpty else { continue }
        let mean = present.reduce(0, +) / Double(present.count)
        metrics["\(prefix)\(name)/mean"] = mean
        metrics["\(prefix)\(name)/std"] = present.count > 1
          ? (present.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(present.count - 1)).squareRoot() : 0
      }
    }
    add("attention/", records.compactMap(\.attention))
    let names = records.first?.attentionGroups.map(\.name) ?? []
    for name in names {
      add("attention/\(name)/", records.compactMap { $0.attentionGroups.first(where: { $0.name == name })?.value })
    }
    return metrics
  }

  /// `step_<n>.md`: per sample the question, the completion, its rewards and the diagnostics table by
  /// layer group (generation phase), as the fork's `attention_diagnostics_*.md`.
  public static func write(step: Int, records: [RolloutRecord], scored: ScoredBatch, to directory: URL) throws {
    var text = "# Attention diagnostics, step \(step)\n\nGeneration phase: the attention of each generated token's query "
      + "over the prompt, heads averaged, text + image normalised to 1.\n"
    for (index, record) in records.enumerated() {
      text += "\n## Prompt \(record.promptIndex + 1), sample \(record.sampleIndex + 1)\n\n"
      text += RolloutLog.fenced(record.question) + "\n" + RolloutLog.fenced(record.text)
      let rewards = scored.rewards.map { "\($0.key) \(RolloutLog.format($0.values[index]))" }.joined(separator: ", ")
      text += "\nrewards: \(rewards); total \(RolloutLog.format(scored.totals[index]))\n\n"
      text += "| layers | text share | image share | MDI | AEI text | AEI image |\n| --- | ---: | ---: | ---: | ---: | ---: |\n"
      for (name, value) in record.attentionGroups + (record.attention.map { [("all recorded", $0)] } ?? []) {
        text += "| \(name) | \(RolloutLog.format(value.textMass)) | \(RolloutLog.format(value.visionMass)) | "
          + "\(RolloutLog.format(value.mdi)) | \(RolloutLog.format(value.aeiText)) | \(RolloutLog.format(value.aeiVision)) |\n"
      }
    }
    let file = directory.appendingPathComponent("step_\(step).md")
    do {
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
      try Data(text.utf8).write(to: file, options: .atomic)
    } catch {
      throw TrainingError.io(path: file.path, reason: "cannot write the attention diagnostics (\(error.localizedDescription))")
    }
  }
}
