import Common
import Foundation
import Imaging
import Testing

@testable import Datasets

/// The demo's single-box layout (docs/demo.md): few large shapes centred in the cells of a coarse
/// grid over the coordinate background, distractors of another color.
@Suite struct SyntheticLayoutTests {
  static let demo = SyntheticLayout(background: .coordinates, cell: 28, sides: 16...28, sideStep: 4, maxDistractors: 1,
                                    distinctColors: true)

  @Test func cellLayoutCentresEachShapeInACellOfItsOwn() throws {
    var shapeCounts = Set<Int>(), sides = Set<Int>()
    for index in 0..<60 {
      let (scene, fields) = SyntheticTasks.sample(task: .singleBox, index: index, seed: 4, imageSize: 56, layout: Self.demo)
      #expect((1...2).contains(scene.shapes.count))
      shapeCounts.insert(scene.shapes.count)
      var cells = Set<Int>()
      for shape in scene.shapes {
        let side = shape.x2 - shape.x1
        sides.insert(side)
        #expect(shape.y2 - shape.y1 == side)
        #expect(shape.x1 % 28 == (28 - side) / 2 && shape.y1 % 28 == (28 - side) / 2)
        cells.insert(shape.y1 / 28 * 2 + shape.x1 / 28)
      }
      #expect(cells.count == scene.shapes.count)
      #expect(scene.shapes.dropFirst().allSatisfy { $0.color != scene.shapes[0].color })
      #expect(fields["bbox"] == .array(scene.shapes[0].box.map { .int($0) }))
    }
    #expect(sides == [16, 20, 24, 28])
    #expect(shapeCounts == [1, 2])
  }

  @Test func coordinateBackgroundRisesAlongBothAxes() {
    let scene = SyntheticScene(width: 56, height: 56, top: [200, 200, 200], bottom: [200, 200, 200], shapes: [],
                               background: .coordinates)
    let image = scene.render()
    func pixel(_ x: Int, _ y: Int) -> [UInt8] { Array(image.pixels[(y * 56 + x) * 3..<(y * 56 + x) * 3 + 3]) }
    #expect(pixel(0, 0) == [150, 150, 200])
    #expect(pixel(55, 0) == [250, 150, 200])
    #expect(pixel(0, 55) == [150, 250, 200])
    #expect(pixel(30, 10)[0] > pixel(20, 10)[0] && pixel(30, 10)[1] == pixel(20, 10)[1])
    #expect(pixel(10, 30)[1] > pixel(10, 20)[1] && pixel(10, 30)[0] == pixel(10, 20)[0])
    // The same scene on the standard background is the plain gradient.
    var plain = scene
    plain.background = .gradient
    #expect(Array(plain.render().pixels[0..<3]) == [200, 200, 200])
  }

  @Test func writtenBoxIsTheTargetsDrawnExtent() throws {
    let folder = try makeTempFolder()
    let file = try SyntheticTasks.write(task: .singleBox, count: 8, seed: 9, imageSize: 56, layout: Self.demo, to: folder)
    let loaded = try DatasetLoader.load(path: file.path)
    #expect(loaded.examples.count == 8)
    for example in loaded.examples {
      let box = try #require(example.rewardFields["bbox"]?.arrayValue?.compactMap { $0.intValue })
      let image = try ImageLoader.decode(example.images[0].source)
      // Inside the box, exactly the pixels that are not background belong to the target; they
      // reach every edge of the box.
      var xs: [Int] = [], ys: [Int] = []
      for y in box[1]..<box[3] {
        for x in box[0]..<box[2] {
          let offset = (y * 56 + x) * 3
          if Array(image.pixels[offset..<offset + 3]) != SyntheticLayout.coordinateColor(x: x, y: y, width: 56, height: 56) {
            xs.append(x)
            ys.append(y)
          }
        }
      }
      #expect(xs.min() == box[0] && ys.min() == box[1] && xs.max() == box[2] - 1 && ys.max() == box[3] - 1)
    }
  }

  @Test func labelJitterMovesTheRecordedCornersOnly() throws {
    var jittered = Self.demo
    jittered.labelJitter = 3
    var offsets = Set<Int>()
    for index in 0..<80 {
      let (scene, fields) = SyntheticTasks.sample(task: .singleBox, index: index, seed: 4, imageSize: 56, layout: jittered)
      let exact = SyntheticTasks.sample(task: .singleBox, index: index, seed: 4, imageSize: 56, layout: Self.demo)
      // The drawn scene is the exact layout's; only the label moves, by at most 3 pixels a corner.
      #expect(scene == exact.scene)
      let box = try #require(fields["bbox"]?.arrayValue?.compactMap { $0.intValue })
      let truth = scene.shapes[0].box
      for (corner, value) in zip(truth, box) {
        #expect(abs(value - corner) <= 3 && (0...56).contains(value))
        offsets.insert(value - corner)
      }
      #expect(box[0] < box[2] && box[1] < box[3])
    }
    #expect(offsets == Set(-3...3))
    jittered.labelJitter = 15
    #expect(jittered.problem(imageSize: 56)?.contains("label jitter 15") == true)
  }

  @Test func impossibleLayoutsAreRefusedWithTheReason() throws {
    #expect(SyntheticLayout(cell: 0).problem(imageSize: 56)?.contains("cell 0") == true)
    #expect(SyntheticLayout(cell: 56, maxDistractors: 1).problem(imageSize: 56)?.contains("1 cells of 56 pixels") == true)
    #expect(SyntheticLayout(cell: 28, sides: 16...40).problem(imageSize: 56)?.contains("sides 16...40") == true)
    #expect(SyntheticLayout(sideStep: 0).problem(imageSize: 56)?.contains("side step 0") == true)
    #expect(SyntheticLayout(maxDistractors: 3).problem(imageSize: 56)?.contains("distractors 3") == true)
    #expect(Self.demo.problem(imageSize: 56) == nil && SyntheticLayout.standard.problem(imageSize: 112) == nil)
    #expect(throws: DatasetError.self) {
      try SyntheticTasks.write(task: .singleBox, count: 1, seed: 0, imageSize: 56, layout: SyntheticLayout(cell: 0),
                               to: FileManager.default.temporaryDirectory.appendingPathComponent("unused-\(UUID().uuidString)"))
    }
  }
}
