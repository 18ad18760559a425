import Common
import Foundation
import Imaging
import Synchronization
import Testing

@testable import Datasets

@Suite struct PrefetchTests {
  func examples(_ count: Int) -> [Example] {
    (0..<count).map { index in
      Example(
        source: RecordLocation(file: "mem", index: index), kind: .r1vQA,
        prompt: [.image(.bytes(Data([UInt8(index)]), name: "img\(index)")), .text("q")],
        rewardFields: [:], images: [ImageInfo(source: .bytes(Data([UInt8(index)]), name: "img\(index)"))])
    }
  }

  @Test func deliversInOrderWithBoundedLookahead() async throws {
    let active = Mutex((now: 0, peak: 0))
    let decode: @Sendable (ImageSource) throws -> RGBImage = { source in
      active.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) }
      defer { active.withLock { $0.now -= 1 } }
      Thread.sleep(forTimeInterval: 0.01)
      guard case .bytes(let data, _) = source, let value = data.first else { throw DatasetError.image("x", reason: "no") }
      if value == 5 { throw DatasetError.image(source.name, reason: "corrupt") }
      return RGBImage(width: 1, height: 1, pixels: [value, value, value])
    }
    let order = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 10, 11]
    var seen: [Int] = []
    var failures: [Int] = []
    var iterator = ImagePrefetcher(examples: examples(12), order: order, lookahead: 3, decode: decode).makeAsyncIterator()
    while let item = await iterator.next() {
      #expect(iterator.inFlight <= 3)
      seen.append(item.example.source.index)
      switch item.images {
      case .success(let images): #expect(images.first?.pixels.first == UInt8(item.example.source.index))
      case .failure(let error):
        failures.append(item.example.source.index)
        #expect("\(error)".contains("mem #5"))
      }
    }
    #expect(seen == order)
    #expect(failures == [5])
    #expect(active.withLock { $0.peak } <= 3)
  }

  @Test func decodesRealFiles() async throws {
    let folder = try makeTempFolder()
    let file = try SyntheticTasks.write(task: .counting, count: 3, seed: 1, imageSize: 48, to: folder)
    let loaded = try DatasetLoader.load(path: file.path)
    var sizes: [Int] = []
    for await item in ImagePrefetcher(examples: loaded.examples, lookahead: 2) {
      sizes.append(try item.images.get().first?.width ?? 0)
    }
    #expect(sizes == [48, 48, 48])
  }
}
