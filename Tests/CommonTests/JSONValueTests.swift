import Foundation
import Testing
@testable import Common

@Test func parsesKindsAndKeepsIntsApart() throws {
  let value = try JSONValue.parse(#"{"a": 3, "b": 3.5, "c": [true, null, "x"], "d": {"e": -2}}"#)
  #expect(value["a"] == .int(3))
  #expect(value["b"] == .double(3.5))
  #expect(value["c"]?.arrayValue?.count == 3)
  #expect(value["c"]?.arrayValue?[1].isNull == true)
  #expect(value["d"]?["e"]?.intValue == -2)
  #expect(value["b"]?.intValue == nil)
  #expect(JSONValue.double(4.0).intValue == 4)
}

@Test func roundTripsSortedCompact() throws {
  let value = try JSONValue.parse(#"{"z": [1, 2.25], "a": "q\"x"}"#)
  #expect(value.jsonString == #"{"a":"q\"x","z":[1,2.25]}"#)
  #expect(try JSONValue.parse(value.jsonString) == value)
}

@Test func rejectsGarbage() {
  #expect(throws: (any Error).self) { try JSONValue.parse("{not json") }
}
