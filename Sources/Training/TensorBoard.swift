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
}
