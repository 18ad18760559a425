import Common
import Foundation
import Imaging
import Testing

@testable import Datasets

@Suite struct SyntheticTests {
  @Test func sameSeedSameFilesOtherSeedOtherFiles() throws {
    let a = try makeTempFolder("a"), b = try makeTempFolder("b"), c = try makeTempFolder("c")
    let fileA = try SyntheticTasks.write(task: .singleBox, count: 4, seed: 5, imageSize: 64, to: a)
    let fileB = try SyntheticTasks.write(task: .singleBox, count: 4, seed: 5, imageSize: 64, to: b)
    let fileC = try SyntheticTasks.write(task: .singleBox, count: 4, seed: 6, imageSize: 64, to: c)
    #expect(try Data(contentsOf: fileA) == Data(contentsOf: fileB))
    #expect(try Data(contentsOf: fileA) != Data(contentsOf: fileC))
    let image = "images/single_box_00002.png"
    #expect(try Data(contentsOf: a.appendingPathComponent(image)) == Data(contentsOf: b.appendingPathComponent(image)))
  }

  @Test func singleBoxGroundTruthMatchesDrawnPixels() throws {
    let folder = try makeTempFolder()
    let file = try SyntheticTasks.write(task: .singleBox, count: 6, seed: 11, imageSize: 96, to: folder)
    let loaded = try DatasetLoader.load(path: file.path)
    #expect(loaded.examples.count == 6)
    for example in loaded.examples {
      let text = try #require(textPart(example))
      let words = text.split(separator: " ")
      #expect(text.hasPrefix("Locate the ") && text.hasSuffix(". Answer with [x1, y1, x2, y2]."))
      let color = try #require(SyntheticShape.Color(rawValue: String(words[2])))
      let box = try #require(example.rewardFields["bbox"]?.arrayValue?.compactMap { $0.intValue })
      // Decode the written PNG and find the extent of the target color: it must be the box
      // (a distractor of the same color sits elsewhere, so look only inside the box's margin).
      let image = try ImageLoader.decode(example.images[0].source)
      #expect(image.width == 96 && image.height == 96)
      var xs: [Int] = [], ys: [Int] = []
      for y in max(0, box[1] - 2)..<min(96, box[3] + 2) {
        for x in max(0, box[0] - 2)..<min(96, box[2] + 2) {
          let offset = (y * 96 + x) * 3
          if (image.pixels[offset], image.pixels[offset + 1], image.pixels[offset + 2]) == color.rgb {
            xs.append(x)
            ys.append(y)
          }
        }
      }
      #expect(xs.min() == box[0] && ys.min() == box[1])
      #expect((xs.max() ?? 0) + 1 == box[2] && (ys.max() ?? 0) + 1 == box[3])
    }
  }

  @Test func countingAndMultipleChoiceLoadAsTheirKinds() throws {
    let folder = try makeTempFolder()
    let counting = try SyntheticTasks.write(task: .counting, count: 5, seed: 3, imageSize: 64, to: folder)
    let choice = try SyntheticTasks.write(task: .multipleChoice, count: 5, seed: 3, imageSize: 64, to: folder)
    let multi = try SyntheticTasks.write(task: .multiBox, count: 5, seed: 3, imageSize: 64, to: folder)
    let countLoaded = try DatasetLoader.load(path: counting.path)
    #expect(countLoaded.examples.map(\.kind) == Array(repeating: .r1vQA, count: 5))
    for index in 0..<5 {
      let (scene, fields) = SyntheticTasks.sample(task: .counting, index: index, seed: 3, imageSize: 64)
      let question = try #require(fields["problem"]?.stringValue)
      let kindName = question.split(separator: " ")[2].dropLast()  // "How many circles are ..."
      let expected = scene.shapes.filter { $0.kind.rawValue == kindName }.count
      #expect(countLoaded.examples[index].rewardFields["solution"] == .string("<answer> \(expected) </answer>"))
    }
    let choiceLoaded = try DatasetLoader.load(path: choice.path)
    for example in choiceLoaded.examples {
      #expect(example.kind == .aokvqa)
      let choices = try #require(example.rewardFields["choices"]?.arrayValue?.compactMap { $0.stringValue })
      let label = try #require(example.rewardFields["label_idx"]?.intValue)
      #expect(example.rewardFields["direct_answers"]?.arrayValue?.first == .string(choices[label]))
    }
    let multiLoaded = try DatasetLoader.load(path: multi.path)
    #expect(multiLoaded.examples.count == 5 && multiLoaded.summary.skipped == 0)
    let boxes = multiLoaded.examples.map { $0.rewardFields["abs_box"]?.objectValue?.values.reduce(0) { $0 + ($1.arrayValue?.count ?? 0) } ?? 0 }
    #expect(boxes.allSatisfy { $0 >= 2 })
  }

  @Test func shapesCoverWhatTheirNamesSay() {
    let circle = SyntheticShape(kind: .circle, color: .red, x1: 0, y1: 0, x2: 10, y2: 10)
    #expect(circle.covers(x: 5, y: 5) && !circle.covers(x: 0, y: 0))
    let triangle = SyntheticShape(kind: .triangle, color: .red, x1: 0, y1: 0, x2: 10, y2: 10)
    #expect(triangle.covers(x: 5, y: 0) && !triangle.covers(x: 0, y: 1) && triangle.covers(x: 0, y: 9))
    let diamond = SyntheticShape(kind: .diamond, color: .red, x1: 0, y1: 0, x2: 10, y2: 10)
    #expect(diamond.covers(x: 5, y: 0) && !diamond.covers(x: 9, y: 9))
  }
}
