// Typed access to a reward's configuration parameters.
import Common
import Foundation

/// The parameters of one reward function, read with defaults; a value of the wrong type is an error
/// naming the reward and the parameter. Unknown keys are rejected before a reward is built
/// (`RewardRegistry.make`); `known` lists the keys the reward declared, and reading any other key
/// is a bug in the reward (an assertion in debug builds).
public struct RewardParameters: Sendable {
  public let reward: String
  public let values: [String: JSONValue]
  /// The keys the reward declared in the registry (nil: not checked).
  public let known: Set<String>?

  public init(reward: String, values: [String: JSONValue], known: Set<String>? = nil) {
    self.reward = reward
    self.values = values
    self.known = known
  }

  /// The value of a declared key (nil when absent or JSON null).
  public func value(_ key: String) -> JSONValue? {
    assert(known?.contains(key) ?? true, "reward '\(reward)' reads undeclared parameter '\(key)'")
    guard let value = values[key], !value.isNull else { return nil }
    return value
  }

  public func double(_ key: String, default fallback: Double) throws -> Double {
    guard let value = value(key) else { return fallback }
    guard let number = value.doubleValue ?? value.stringValue.flatMap(Double.init), number.isFinite else {
      throw bad(key, "expected a number, got \(value)")
    }
    return number
  }

  public func int(_ key: String, default fallback: Int) throws -> Int {
    guard let value = value(key) else { return fallback }
    guard let number = value.intValue ?? value.stringValue.flatMap({ Int($0) }) else {
      throw bad(key, "expected an integer, got \(value)")
    }
    return number
  }

  public func bool(_ key: String, default fallback: Bool) throws -> Bool {
    guard let value = value(key) else { return fallback }
    if let flag = value.boolValue { return flag }
    switch value.stringValue?.lowercased() {
    case "true", "1", "yes": return true
    case "false", "0", "no": return false
    default: throw bad(key, "expected true or false, got \(value)")
    }
  }

  public func string(_ key: String) throws -> String? {
    guard let value = value(key) else { return nil }
    guard let text = value.stringValue else { throw bad(key, "expected a string, got \(value)") }
    return text
  }

  public func stringList(_ key: String) throws -> [String]? {
    guard let value = value(key) else { return nil }
    if let text = value.stringValue { return [text] }
    guard let items = value.arrayValue else { throw bad(key, "expected a list of strings") }
    return try items.map { item in
      guard let text = item.stringValue else { throw bad(key, "expected a list of strings, got \(item)") }
      return text
    }
  }

  public func frame(default fallback: BoxFrame = .original) throws -> BoxFrame {
    guard let text = try string("box_frame") else { return fallback }
    guard let frame = BoxFrame(rawValue: text) else {
      throw bad("box_frame", "'\(text)' is not one of \(BoxFrame.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return frame
  }

  public func bad(_ key: String, _ message: String) -> RewardError {
    .badParameter(reward: reward, parameter: key, message: message)
  }
}
