// Typed access to a reward's configuration parameters.
import Common
import Foundation

/// The parameters of one reward function, read with defaults; a value of the wrong type is an error
/// naming the reward and the parameter. Keys a reward does not use are ignored, so one parameter
/// block (e.g. `box_frame`) can be shared by several rewards.
public struct RewardParameters: Sendable {
  public let reward: String
  public let values: [String: JSONValue]

  public init(reward: String, values: [String: JSONValue]) {
    self.reward = reward
    self.values = values
  }

  public func double(_ key: String, default fallback: Double) throws -> Double {
    guard let value = values[key], !value.isNull else { return fallback }
    guard let number = value.doubleValue ?? value.stringValue.flatMap(Double.init), number.isFinite else {
      throw bad(key, "expected a number, got \(value)")
    }
    return number
  }

  public func int(_ key: String, default fallback: Int) throws -> Int {
    guard let value = values[key], !value.isNull else { return fallback }
    guard let number = value.intValue ?? value.stringValue.flatMap({ Int($0) }) else {
      throw bad(key, "expected an integer, got \(value)")
    }
    return number
  }

  public func bool(_ key: String, default fallback: Bool) throws -> Bool {
    guard let value = values[key], !value.isNull else { return fallback }
    if let flag = value.boolValue { return flag }
    switch value.stringValue?.lowercased() {
    case "true", "1", "yes": return true
    case "false", "0", "no": return false
    default: throw bad(key, "expected true or false, got \(value)")
    }
  }

  public func string(_ key: String) throws -> String? {
    guard let value = values[key], !value.isNull else { return nil }
    guard let text = value.stringValue else { throw bad(key, "expected a string, got \(value)") }
    return text
  }

  public func stringList(_ key: String) throws -> [String]? {
    guard let value = values[key], !value.isNull else { return nil }
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
