import Foundation

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of TFRecord framing.
public enum CRC32C {
  private static let table: [UInt32] = (0..<256).map { index in
    var crc = UInt32(index)
    for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
    return crc
  }

  public static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
    return crc ^ 0xFFFF_FFFF
  }

  /// TFRecord's masked form: rotate right by 15 and add a constant, so that a CRC of data that
  /// itself contains CRCs stays well distributed.
  public static func masked<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
    let crc = checksum(bytes)
    return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
  }
}

/// The record framing of TensorFlow event files: u64 length, masked CRC of the length, payload,
/// masked CRC of the payload (all little-endian).
public enum TFRecord {
  public static func frame(_ payload: [UInt8]) -> [UInt8] {
    let length = littleEndian(UInt64(payload.count))
    return length + littleEndian(CRC32C.masked(length)) + payload + littleEndian(CRC32C.masked(payload))
  }

  /// The payloads of a framed file; nil when the framing or a checksum is wrong.
  public static func records(_ bytes: [UInt8]) -> [[UInt8]]? {
    var records: [[UInt8]] = []
    var position = 0
    while position < bytes.count {
      guard bytes.count - position >= 12 else { return nil }
      let lengthBytes = Array(bytes[position..<position + 8])
      let length = lengthBytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
      guard littleEndian(CRC32C.masked(lengthBytes)) == Array(bytes[position + 8..<position + 12]),
        length <= UInt64(bytes.count - position - 16)
      else { return nil }
      let start = position + 12, end = start + Int(length)
      let payload = Array(bytes[start..<end])
      guard littleEndian(CRC32C.masked(payload)) == Array(bytes[end..<end + 4]) else { return nil }
      records.append(payload)
      position = end + 4
    }
    return records
  }

  static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.littleEndian) { Array($0) }
  }
}

/// Hand-written protobuf encoding of the two messages an event file needs (tensorflow's
/// `event.proto` and `summary.proto`): `Event{wall_time=1 double, step=2 int64, file_version=3
/// string, summary=5 Summary}`, `Summary{value=1 repeated Value}`, `Value{tag=1 string,
/// simple_value=2 float}`.
public enum TensorBoardEvent {
  /// The first record of every event file.
  public static func fileVersion(wallTime: Double) -> [UInt8] {
    doubleField(1, wallTime) + varintField(2, 0) + bytesField(3, Array("brain.Event:2".utf8))
  }

  /// One event holding scalar summaries, in the order given.
  public static func scalars(_ values: [(tag: String, value: Double)], step: Int, wallTime: Double) -> [UInt8] {
    let summary = values.flatMap { tag, value in
      bytesField(1, bytesField(1, Array(tag.utf8)) + floatField(2, Float(value)))
    }
    return doubleField(1, wallTime) + varintField(2, UInt64(bitPattern: Int64(step))) + bytesField(5, summary)
  }

  /// The `step` field of an encoded event (nil when absent or the bytes are not an event).
  public static func step(of event: [UInt8]) -> Int? {
    var position = 0
    func readVarint() -> UInt64? {
      var value: UInt64 = 0
      var shift: UInt64 = 0
      while position < event.count, shift < 64 {
        let byte = event[position]
        position += 1
        value |= UInt64(byte & 0x7F) << shift
        if byte & 0x80 == 0 { return value }
        shift += 7
      }
      return nil
    }
    while position < event.count {
      guard let key = readVarint() else { return nil }
      switch key & 7 {
      case 0:
        guard let value = readVarint() else { return nil }
        if key >> 3 == 2 { return Int(Int64(bitPattern: value)) }
      case 1: position += 8
      case 2:
        guard let length = readVarint(), length <= UInt64(event.count - position) else { return nil }
        position += Int(length)
      case 5: position += 4
      default: return nil
      }
    }
    return nil
  }

  // MARK: Wire format

  static func varint(_ value: UInt64) -> [UInt8] {
    var value = value
    var bytes: [UInt8] = []
    repeat {
      let low = UInt8(value & 0x7F)
      value >>= 7
      bytes.append(value == 0 ? low : low | 0x80)
    } while value != 0
    return bytes
  }

  private static func key(_ field: UInt64, _ wireType: UInt64) -> [UInt8] { varint(field << 3 | wireType) }
  static func varintField(_ field: UInt64, _ value: UInt64) -> [UInt8] { key(field, 0) + varint(value) }
  static func doubleField(_ field: UInt64, _ value: Double) -> [UInt8] {
    key(field, 1) + TFRecord.littleEndian(value.bitPattern)
  }
  static func floatField(_ field: UInt64, _ value: Float) -> [UInt8] {
    key(field, 5) + TFRecord.littleEndian(value.bitPattern)
  }
  static func bytesField(_ field: UInt64, _ payload: [UInt8]) -> [UInt8] {
    key(field, 2) + varint(UInt64(payload.count)) + payload
  }
}

/// Writes scalar metrics to a TensorBoard event file (`events.out.tfevents.<time>.<host>`) that
/// `tensorboard --logdir` reads. Each `add` appends one framed event and flushes it, so a run
/// killed midway leaves a readable file.
public final class TensorBoardWriter: @unchecked Sendable {
  public let url: URL
  private let handle: FileHandle
  private let lock = NSLock()

  /// Creates `directory` and a new event file in it. `fileName` overrides the conventional name.
  public init(directory: URL, fileName: String? = nil, wallTime: Double = Date().timeIntervalSince1970) throws {
    let host = ProcessInfo.processInfo.hostName.replacingOccurrences(of: "/", with: "_")
    let name = fileName ?? "events.out.tfevents.\(Int(wallTime)).\(host)"
    url = directory.appendingPathComponent(name)
    do {
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
      guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
        throw TrainingError.io(path: url.path, reason: "cannot create the event file")
      }
      handle = try FileHandle(forWritingTo: url)
      try handle.write(contentsOf: TFRecord.frame(TensorBoardEvent.fileVersion(wallTime: wallTime)))
    } catch let error as TrainingError {
      throw error
    } catch {
      throw TrainingError.io(path: url.path, reason: "cannot write the event file (\(error.localizedDescription))")
    }
  }

  deinit { try? handle.close() }

  /// Appends one event with `values` as scalars at `step` (tags in the order given; non-finite
  /// values are skipped, as TensorBoard would show nothing useful for them).
  public func add(_ values: [(tag: String, value: Double)], step: Int,
                  wallTime: Double = Date().timeIntervalSince1970) throws {
    let finite = values.filter { $0.value.isFinite }
    guard !finite.isEmpty else { return }
    let record = TFRecord.frame(TensorBoardEvent.scalars(finite, step: step, wallTime: wallTime))
    try lock.withLock {
      do { try handle.write(contentsOf: record) } catch {
        throw TrainingError.io(path: url.path, reason: "cannot append to the event file (\(error.localizedDescription))")
      }
    }
  }

  /// Appends the numeric entries of a metrics row, tags sorted.
  public func add(_ row: [String: Double], step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
    try add(row.keys.sorted().compactMap { key in row[key].map { (key, $0) } }, step: step, wallTime: wallTime)
  }

  public func close() { lock.withLock { try? handle.close() } }

  // MARK: Runs and tags as transformers writes them

  /// The sub-folder of one run under the log folder, transformers' `logging_dir` default
  /// (`runs/%b%d_%H-%M-%S_<hostname>`, local time, e.g. `May04_14-03-22_node1`).
  public static func runFolderName(date: Date = Date(), host: String = ProcessInfo.processInfo.hostName,
                                   timeZone: TimeZone = .current) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = timeZone
    formatter.dateFormat = "MMMdd_HH-mm-ss"
    return formatter.string(from: date) + "_" + host.replacingOccurrences(of: "/", with: "_")
  }

  /// `name` under `logFolder`, or `name-2`, `name-3`... when a run started in the same second.
  static func freshFolder(_ name: String, in logFolder: URL) -> URL {
    var candidate = logFolder.appendingPathComponent(name)
    var suffix = 2
    while FileManager.default.fileExists(atPath: candidate.path) {
      candidate = logFolder.appendingPathComponent("\(name)-\(suffix)")
      suffix += 1
    }
    return candidate
  }

  /// The TensorBoard tag of a metric, as transformers' TensorBoard callback rewrites log keys:
  /// `eval_x` -> `eval/x`, `test_x` -> `test/x`, anything else -> `train/x` (a key that already
  /// starts with `train/`, `eval/` or `test/` is kept).
  public static func tag(for key: String) -> String {
    for section in ["train", "eval", "test"] {
      if key.hasPrefix(section + "/") { return key }
      if key.hasPrefix(section + "_") { return section + "/" + key.dropFirst(section.count + 1) }
    }
    return "train/" + key
  }

  /// Drops the events after `step` from every event file under `logFolder` (its run sub-folders),
  /// as a resumed run does with the rows of `metrics.jsonl`: the interrupted run's steps after its
  /// last checkpoint are run again, and TensorBoard would otherwise show them twice. A file that is
  /// not a readable event file is left alone.
  public static func dropEvents(after step: Int, under logFolder: URL) throws {
    let manager = FileManager.default
    guard let walker = manager.enumerator(at: logFolder, includingPropertiesForKeys: nil) else { return }
    for case let file as URL in walker where file.lastPathComponent.hasPrefix("events.out.tfevents.") {
      guard let data = manager.contents(atPath: file.path), let records = TFRecord.records([UInt8](data)) else { continue }
      let kept = records.filter { (TensorBoardEvent.step(of: $0) ?? 0) <= step }
      guard kept.count < records.count else { continue }
      do {
        try Data(kept.flatMap(TFRecord.frame)).write(to: file, options: .atomic)
      } catch {
        throw TrainingError.io(path: file.path, reason: "cannot rewrite the event file (\(error.localizedDescription))")
      }
    }
  }
}
