import Common
import Foundation

/// A prompt-length limit: records whose prompt would exceed `maxTokens` once image tokens are
/// counted are skipped (so image tokens are never truncated).
public struct PromptLimit: Sendable {
  public var maxTokens: Int
  /// Tokens of a text part (the caller's tokenizer).
  public var textTokens: @Sendable (String) -> Int
  /// Tokens of one image of the given original size (the model processor's count).
  public var imageTokens: @Sendable (_ width: Int, _ height: Int) -> Int

  public init(
    maxTokens: Int, textTokens: @escaping @Sendable (String) -> Int,
    imageTokens: @escaping @Sendable (_ width: Int, _ height: Int) -> Int
  ) {
    self.maxTokens = maxTokens
    self.textTokens = textTokens
    self.imageTokens = imageTokens
  }

  /// The prompt's token count (text parts plus image tokens; nil when an image size is unknown).
  public func tokens(of example: Example) -> Int? {
    var total = 0
    for part in example.prompt {
      if case .text(let text) = part { total += textTokens(text) }
    }
    for image in example.images {
      guard let width = image.width, let height = image.height else { return nil }
      total += imageTokens(width, height)
    }
    return total
  }
}

/// Options of `DatasetLoader`.
public struct LoadOptions: Sendable {
  /// Seed of `random:` sampling (`data_seed`); entry `i` of a YAML uses `dataSeed + i`.
  public var dataSeed: UInt64 = 42
  /// `on_bad_record`: skip (count and report) or stop at the first bad record.
  public var onBadRecord: BadRecordPolicy = .skip
  /// Which REC prompt to build (`r1` or `baseline`).
  public var recPrompt: RECPromptStyle = .r1
  /// Read image headers to learn sizes and check files exist (needed by the size and prompt filters).
  public var probeImageSizes = true
  /// Skip images whose width or height exceeds this (the seed's `filter_big_images` uses 1024).
  public var maxImageSide: Int?
  /// Skip images with more pixels than this.
  public var maxImagePixels: Int?
  /// Skip records whose prompt is longer than the limit.
  public var promptLimit: PromptLimit?
  /// How many bad records the summary lists by name (all are counted).
  public var badRecordsListed = 20
  /// Column mapping of TRL / EasyR1 records and the default system turn (the training config's
  /// `dataset.prompt_key` etc.); a dataset YAML entry's keys win over these.
  public var columns = ColumnMapping()

  /// The seed's `filter_big_images`: images over 1024x1024 (either side) are skipped.
  public static let bigImageSide = 1024

  public init() {}

  var parseOptions: ParseOptions {
    let filtering = maxImageSide != nil || maxImagePixels != nil || promptLimit != nil
    return ParseOptions(recPrompt: recPrompt, probeImageSizes: probeImageSizes || filtering, columns: columns)
  }
}

/// Examples with the summary of how they were loaded.
public struct LoadedDataset: Sendable {
  public var examples: [Example]
  public var summary: LoadSummary
}

/// Loads examples from dataset YAMLs or data paths, applying sampling, filters and the
/// bad-record policy. Nothing is dropped without being counted in the summary.
public enum DatasetLoader {
  /// Loads every entry of a dataset YAML (its `data_seed`, when set, replaces `options.dataSeed`).
  public static func load(_ config: DatasetConfig, options: LoadOptions = LoadOptions()) throws -> LoadedDataset {
    var summary = LoadSummary()
    var examples: [Example] = []
    let seed = config.dataSeed ?? options.dataSeed
    for (index, entry) in config.entries.enumerated() {
      let loaded = try loadEntry(
        entry, base: config.baseFolder, seed: seed &+ UInt64(index), options: options, summary: &summary)
      examples.append(contentsOf: loaded)
    }
    return LoadedDataset(examples: examples, summary: summary)
  }

  /// Loads one data path (file, folder or glob); relative paths are resolved against the current
  /// directory.
  public static func load(
    path: String, kind: RecordKind? = nil, sampling: SamplingStrategy = .all, imageRoot: String? = nil,
    options: LoadOptions = LoadOptions()
  ) throws -> LoadedDataset {
    let config = DatasetConfig(entries: [DatasetEntry(path: path, sampling: sampling, imageRoot: imageRoot, kind: kind)])
    return try load(config, options: options)
  }

  // MARK: One entry

  private static func loadEntry(
    _ entry: DatasetEntry, base: URL?, seed: UInt64, options: LoadOptions, summary: inout LoadSummary
  ) throws -> [Example] {
    var parseOptions = options.parseOptions
    parseOptions.columns = entry.columns.over(options.columns)
    try parseOptions.columns.validate(source: entry.path)
    let reader = try DataFiles.reader(at: entry.path, relativeTo: base)
    var source = SourceSummary(name: entry.path, sampling: entry.sampling)
    let plan = try selectionPlan(entry.sampling, reader: reader, seed: seed, source: &source)
    var slots = [Example?](repeating: nil, count: plan.order?.count ?? 0)
    var streamed: [Example] = []
    var seen = 0
    let imageRoot = entry.imageRoot.map { DataFiles.resolveDataPath($0, base: base) }
    try reader.forEach(plan.filter) { index, item in
      seen += 1
      let dataFolder = URL(fileURLWithPath: item.location.file).deletingLastPathComponent()
      let builder = ExampleBuilder(
        options: parseOptions, resolver: PathResolver(imageRoot: imageRoot, dataFolder: dataFolder))
      switch buildAndFilter(item, kind: entry.kind, builder: builder, options: options) {
      case .success(let (example, columns)):
        source.loaded += 1
        source.kinds[example.kind, default: 0] += 1
        if let columns { source.columns["\(example.kind.rawValue): \(columns)", default: 0] += 1 }
        if let position = plan.order?[index] { slots[position] = example } else { streamed.append(example) }
      case .failure(let bad):
        if options.onBadRecord == .error { throw DatasetError.badRecord(bad) }
        summary.record(bad, listLimit: options.badRecordsListed)
        source.skipped += 1
      }
      return true
    }
    source.selected = plan.order?.count ?? seen
    if case .first(.count(let wanted)) = entry.sampling, seen < wanted {
      source.warning = "first:\(wanted) asks for \(wanted) records but only \(seen) exist; taking all \(seen)"
    }
    if source.available == nil, entry.sampling == .all { source.available = seen }
    summary.sources.append(source)
    return plan.order == nil ? streamed : slots.compactMap { $0 }
  }

  /// Which indices to read; `order` maps a selected index to its position (nil: file order).
  private static func selectionPlan(
    _ sampling: SamplingStrategy, reader: any RecordReader, seed: UInt64, source: inout SourceSummary
  ) throws -> (filter: IndexFilter, order: [Int: Int]?) {
    switch sampling {
    case .all: return (.all, nil)
    case .first(.count(let count)): return (IndexFilter(wanted: { _ in true }, endIndex: count), nil)
    default:
      let available = try reader.count()
      source.available = available
      let (indices, warning) = sampling.select(available: available, seed: seed)
      source.warning = warning
      let order = Dictionary(indices.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
      let end = (indices.max() ?? -1) + 1
      return (IndexFilter(wanted: { order[$0] != nil }, endIndex: end), order)
    }
  }

  private static func buildAndFilter(
    _ item: RawRecordItem, kind: RecordKind?, builder: ExampleBuilder, options: LoadOptions
  ) -> Result<(Example, ResolvedColumns?), BadRecord> {
    do {
      let raw = try item.record.get()
      let built = try builder.buildWithColumns(raw, location: item.location, kind: kind)
      try applyFilters(built.example, options: options)
      return .success(built)
    } catch let problem as RecordProblem {
      return .failure(BadRecord(location: item.location, field: problem.field, reason: problem.reason, detail: problem.detail))
    } catch {
      return .failure(BadRecord(location: item.location, field: nil, reason: .unreadableImage, detail: "\(error)"))
    }
  }

  /// Size and prompt-length filters (counted as bad records with their own reasons).
  static func applyFilters(_ example: Example, options: LoadOptions) throws {
    for image in example.images {
      guard let width = image.width, let height = image.height else { continue }
      if let side = options.maxImageSide, width > side || height > side {
        throw RecordProblem(.imageTooBig, field: nil, "\(width)x\(height) image exceeds the \(side)-pixel side limit")
      }
      if let pixels = options.maxImagePixels, width * height > pixels {
        throw RecordProblem(.imageTooBig, field: nil, "\(width)x\(height) image exceeds \(pixels) pixels")
      }
    }
    if let limit = options.promptLimit {
      guard let tokens = limit.tokens(of: example) else {
        throw RecordProblem(.unreadableImage, field: nil, "image size unknown; cannot count prompt tokens")
      }
      if tokens > limit.maxTokens {
        throw RecordProblem(.promptTooLong, field: nil, "prompt has \(tokens) tokens, over the \(limit.maxTokens) limit")
      }
    }
  }
}
