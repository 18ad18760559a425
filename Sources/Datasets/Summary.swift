import Foundation

/// What was loaded from one dataset entry.
public struct SourceSummary: Sendable {
  public var name: String
  public var sampling: SamplingStrategy
  /// Records in the files (nil when the strategy did not need to count them).
  public var available: Int?
  /// Records the sampling strategy selected.
  public var selected = 0
  /// Examples built from the selected records.
  public var loaded = 0
  /// Selected records skipped as bad or filtered.
  public var skipped = 0
  public var kinds: [RecordKind: Int] = [:]
  /// The column mappings chat and prompt records were read with (`kind: prompt=..., images=...,
  /// ground truth=...`), with their counts.
  public var columns: [String: Int] = [:]
  /// Set when the strategy asked for more records than exist.
  public var warning: String?

  public init(name: String, sampling: SamplingStrategy) {
    self.name = name
    self.sampling = sampling
  }
}

/// Counts of a load: per source, per kind, skipped per reason, and the first bad records by name.
public struct LoadSummary: Sendable {
  public var sources: [SourceSummary] = []
  public var skippedByReason: [BadRecordReason: Int] = [:]
  /// The first bad records (up to `LoadOptions.badRecordsListed`); all are counted.
  public var badRecords: [BadRecord] = []

  public init() {}

  public var loaded: Int { sources.reduce(0) { $0 + $1.loaded } }
  public var skipped: Int { skippedByReason.values.reduce(0, +) }
  public var warnings: [String] { sources.compactMap { source in source.warning.map { "\(source.name): \($0)" } } }
  public var kinds: [RecordKind: Int] {
    sources.reduce(into: [:]) { total, source in total.merge(source.kinds, uniquingKeysWith: +) }
  }

  mutating func record(_ bad: BadRecord, listLimit: Int) {
    skippedByReason[bad.reason, default: 0] += 1
    if badRecords.count < listLimit { badRecords.append(bad) }
  }

  /// The summary as text lines (what `vlmrl data inspect` and the trainers print).
  public var lines: [String] {
    var lines = ["loaded \(loaded) examples from \(sources.count) source(s), skipped \(skipped)"]
    for source in sources {
      let available = source.available.map { "\($0) available, " } ?? ""
      let kinds = source.kinds.sorted { $0.key.rawValue < $1.key.rawValue }
        .map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", ")
      lines.append(
        "  \(source.name): \(source.sampling), \(available)\(source.selected) selected, \(source.loaded) loaded, "
          + "\(source.skipped) skipped [\(kinds)]")
      for (mapping, count) in source.columns.sorted(by: { $0.key < $1.key }) {
        lines.append("    columns \(mapping): \(count)")
      }
      if let warning = source.warning { lines.append("    warning: \(warning)") }
    }
    if !skippedByReason.isEmpty {
      lines.append("skipped by reason:")
      for (reason, count) in skippedByReason.sorted(by: { $0.key < $1.key }) {
        lines.append("  \(reason.rawValue): \(count)")
      }
      lines.append("bad records (first \(badRecords.count)):")
      lines += badRecords.map { "  \($0)" }
    }
    return lines
  }
}
