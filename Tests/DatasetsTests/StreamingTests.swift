import Common
import Foundation
import Testing

@testable import Datasets

@Suite struct StreamingTests {
  @Test func linesSplitAcrossChunkBoundaries() throws {
    let folder = try makeTempFolder()
    let text = "{\"a\": 1}\r\n\n{\"b\": \"long line that spans several chunks\"}\n  \nlast"
    let url = try writeText(folder, "x.jsonl", text)
    for chunkSize in [1, 3, 7, 64] {
      var lines: [String] = []
      var numbers: [Int] = []
      try LineStream.forEachLine(url, chunkSize: chunkSize) { number, line in
        lines.append(String(decoding: line, as: UTF8.self))
        numbers.append(number)
        return true
      }
      #expect(lines == ["{\"a\": 1}", "", "{\"b\": \"long line that spans several chunks\"}", "  ", "last"])
      #expect(numbers == [1, 2, 3, 4, 5])
    }
  }

  @Test func concatenatedReaderCountsWithoutRereading() throws {
    let folder = try makeTempFolder()
    try writeText(folder, "a.jsonl", "{\"i\": 0}\n{\"i\": 1}\n\n{\"i\": 2}\n")
    try writeText(folder, "b.jsonl", "{\"i\": 3}\nnot json\n")
    let reader = try DataFiles.reader(at: folder.path + "/*.jsonl")
    #expect(try reader.count() == 5)
    var seen: [Int] = []
    var problems: [BadRecordReason] = []
    let passed = try reader.forEach(IndexFilter(wanted: { $0 != 1 }, endIndex: nil)) { index, item in
      seen.append(index)
      if case .failure(let problem) = item.record { problems.append(problem.reason) }
      return true
    }
    #expect(passed == 5)
    #expect(seen == [0, 2, 3, 4])
    #expect(problems == [.malformedJSON])
    let stopped = try reader.forEach(IndexFilter(wanted: { _ in true }, endIndex: 4)) { _, _ in true }
    #expect(stopped == 4)
  }
}
