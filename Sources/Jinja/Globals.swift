#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The globals Hugging Face's chat-template environment defines (`raise_exception`, `namespace`,
/// `strftime_now`, `dict`) plus Jinja's `range`.
enum Globals {
  /// Most items `range()` may produce, so a template cannot exhaust memory.
  static let maxRangeLength = 1_000_000

  static let all: [String: JinjaValue] = [
    "raise_exception": .callable(JinjaCallable(name: "raise_exception") { args, _ in
      throw JinjaError(.raised, args.first?.pythonString ?? "")
    }),
    "namespace": .callable(JinjaCallable(name: "namespace") { args, kwargs in
      .namespace(JinjaNamespace(try dictionary(args, kwargs, function: "namespace")))
    }),
    "dict": .callable(JinjaCallable(name: "dict") { args, kwargs in
      .object(try dictionary(args, kwargs, function: "dict"))
    }),
    "range": .callable(JinjaCallable(name: "range") { args, _ in try range(args) }),
    "strftime_now": .callable(JinjaCallable(name: "strftime_now") { args, _ in
      .string(strftimeNow(args.first?.pythonString ?? ""))
    }),
  ]

  /// `dict(mapping_or_pairs, **kwargs)`.
  private static func dictionary(
    _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)], function: String
  ) throws(JinjaError) -> JinjaObject {
    var object = JinjaObject()
    if let first = args.first {
      switch first {
      case .object(let o): object = o
      case .namespace(let ns): object = ns.attributes
      case .array(let pairs):
        for pair in pairs {
          guard case .array(let kv) = pair, kv.count == 2 else {
            throw JinjaError.runtime("\(function)(): sequence elements must be pairs")
          }
          object[kv[0].pythonString] = kv[1]
        }
      default: throw JinjaError.runtime("\(function)(): cannot convert '\(first.typeName)' to a mapping")
      }
    }
    for (key, value) in kwargs { object[key] = value }
    return object
  }

  private static func range(_ args: [JinjaValue]) throws(JinjaError) -> JinjaValue {
    var bounds: [Int] = []
    for arg in args {
      guard case .int(let i)? = arg.numeric else {
        throw JinjaError.runtime("range(): '\(arg.typeName)' object cannot be interpreted as an integer")
      }
      bounds.append(i)
    }
    let (start, stop, step): (Int, Int, Int)
    switch bounds.count {
    case 1: (start, stop, step) = (0, bounds[0], 1)
    case 2: (start, stop, step) = (bounds[0], bounds[1], 1)
    case 3: (start, stop, step) = (bounds[0], bounds[1], bounds[2])
    default: throw JinjaError.runtime("range expected 1 to 3 arguments, got \(bounds.count)")
    }
    guard step != 0 else { throw JinjaError.runtime("range() arg 3 must not be zero") }
    let span = step > 0 ? Double(stop) - Double(start) : Double(start) - Double(stop)
    let count = span <= 0 ? 0 : Int((span / Double(abs(step))).rounded(.up))
    guard count <= maxRangeLength else { throw JinjaError.runtime("range() of \(count) items is too large") }
    return .array((0..<count).map { .int(start + $0 * step) })
  }

  /// `datetime.now().strftime(format)` in local time.
  private static func strftimeNow(_ format: String) -> String {
    var now = time(nil)
    var parts = tm()
    localtime_r(&now, &parts)
    var buffer = [CChar](repeating: 0, count: 512)
    let length = strftime(&buffer, buffer.count, format, &parts)
    return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}
