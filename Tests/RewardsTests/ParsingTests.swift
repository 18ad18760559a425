import Common
import Foundation
import Testing
@testable import Rewards

@Suite struct ParsingTests {
  @Test func answerIsLastTaggedBlockElseWholeText() {
    #expect(AnswerParsing.answer(in: "<answer>1</answer> x <answer> 2 </answer>") == "2")
    #expect(AnswerParsing.answer(in: "  [1, 2, 3, 4]\n") == "[1, 2, 3, 4]")
    #expect(AnswerParsing.answer(in: "<answer>unclosed") == "<answer>unclosed")
    #expect(AnswerParsing.answer(in: "</answer><answer>") == "</answer><answer>")
  }

  @Test func firstBoxFindsFourNumberListsOnly() {
    #expect(AnswerParsing.firstBox(in: "see [1, 2] then [10, 20.5, -3, +4]") == Box(10, 20.5, -3, 4))
    #expect(AnswerParsing.firstBox(in: #"{"bbox_2d": [5,6,7,8], "label": "cat"}"#) == Box(5, 6, 7, 8))
    #expect(AnswerParsing.firstBox(in: "[[1,2,3,4],[5,6,7,8]]") == Box(1, 2, 3, 4))
    #expect(AnswerParsing.firstBox(in: "[1,2,3,4,5]") == nil)
    #expect(AnswerParsing.firstBox(in: "[1,2,3,a]") == nil)
    #expect(AnswerParsing.firstBox(in: "no box") == nil)
    #expect(AnswerParsing.firstBox(in: "[1e400, 2, 3, 4]") == nil)
    // Reordered corners.
    let box = AnswerParsing.firstBox(in: "[30, 40, 10, 20]")
    #expect(box?.x1 == 10 && box?.y1 == 20 && box?.x2 == 30 && box?.y2 == 40)
  }

  @Test func bareBoxFormat() {
    #expect(AnswerParsing.isBareBox(" [1, 2,3 , 4] ", allowDecimals: false))
    #expect(!AnswerParsing.isBareBox("[1.5, 2, 3, 4]", allowDecimals: false))
    #expect(AnswerParsing.isBareBox("[1.5, 2, 3, 4]", allowDecimals: true))
    #expect(!AnswerParsing.isBareBox("[1, 2, 3]", allowDecimals: false))
    #expect(!AnswerParsing.isBareBox("box: [1, 2, 3, 4]", allowDecimals: false))
    #expect(!AnswerParsing.isBareBox("[1, 2, 3, 4", allowDecimals: false))
    #expect(!AnswerParsing.isBareBox("[1,,2,3]", allowDecimals: false))
  }

  @Test func literalParserReadsJSONAndPython() throws {
    let python = LiteralParser.parse("{0: [[1, 2, 3, 4], (5, 6, 7, 8),], 'x': None, \"y\": True, 2: -1.5e2}")
    let object = try #require(python?.objectValue)
    #expect(object["0"] == .array([.array([.int(1), .int(2), .int(3), .int(4)]), .array([.int(5), .int(6), .int(7), .int(8)])]))
    #expect(object["x"] == .null)
    #expect(object["y"] == .bool(true))
    #expect(object["2"] == .double(-150))
    #expect(LiteralParser.parse(#"{"a": "q\"uote\u00e9"}"#)?["a"] == .string("q\"uoteé"))
    #expect(LiteralParser.parse("{0: [1, 2}") == nil)
    #expect(LiteralParser.parse("[1, 2] extra") == nil)
    #expect(LiteralParser.parse("[nan]") == nil)
    #expect(LiteralParser.parse("[1e999]") == nil)
    #expect(LiteralParser.parse(String(repeating: "[", count: 10_000)) == nil)
    #expect(LiteralParser.parseLenient("Here: ```json\n{\"0\": []}\n```")?["0"] == .array([]))
    #expect(LiteralParser.parseLenient("```python\n{1: []}\n```")?["1"] == .array([]))
  }

  @Test func framesRescaleToOriginalPixels() {
    let image = ImageGeometry(originalWidth: 1000, originalHeight: 500, resizedWidth: 500, resizedHeight: 250)
    let box = Box(100, 50, 200, 100)
    #expect(BoxFrame.original.toOriginal(box, image: image) == box)
    #expect(BoxFrame.resized.toOriginal(box, image: image) == Box(200, 100, 400, 200))
    #expect(BoxFrame.norm1000.toOriginal(box, image: image) == Box(100, 25, 200, 50))
    #expect(BoxFrame.resized.toOriginal(box, image: nil) == box)
  }
}
