import Common
import Foundation
import Testing

@testable import Datasets

@Suite struct SamplingTests {
  @Test func splitMix64MatchesReferenceOutputs() {
    // Reference values of SplitMix64 from seed 0 (Steele et al.; also computed in Python).
    var generator = SplitMix64(seed: 0)
    #expect(generator.next() == 0xE220_A839_7B1D_CDAF)
    #expect(generator.next() == 0x6E78_9E6A_A1B9_65F4)
    #expect(generator.next() == 0x06C4_5D18_8009_454F)
  }

  @Test func parsesStrategies() throws {
    #expect(try SamplingStrategy(parsing: "all") == .all)
    #expect(try SamplingStrategy(parsing: "first:100") == .first(.count(100)))
    #expect(try SamplingStrategy(parsing: "end:10") == .end(.count(10)))
    #expect(try SamplingStrategy(parsing: "random:12.5%") == .random(.percent(12.5)))
    #expect(try SamplingStrategy(parsing: "random:200") == .random(.count(200)))
    #expect(throws: DatasetError.self) { try SamplingStrategy(parsing: "middle:3") }
    #expect(throws: DatasetError.self) { try SamplingStrategy(parsing: "random:150%") }
    #expect(throws: DatasetError.self) { try SamplingStrategy(parsing: "first:-1") }
  }

  @Test func exactCountsAndPercentCeil() {
    #expect(SamplingStrategy.first(.count(3)).select(available: 10, seed: 1).indices == [0, 1, 2])
    #expect(SamplingStrategy.end(.count(3)).select(available: 10, seed: 1).indices == [7, 8, 9])
    // ceil(12.5 * 10 / 100) = ceil(1.25) = 2; ceil(50 * 7 / 100) = 4.
    #expect(SamplingStrategy.random(.percent(12.5)).select(available: 10, seed: 1).indices.count == 2)
    #expect(SamplingStrategy.first(.percent(50)).select(available: 7, seed: 1).indices == [0, 1, 2, 3])
    #expect(SamplingStrategy.random(.percent(0.1)).select(available: 10, seed: 1).indices.count == 1)
  }

  @Test func randomIsSeededDistinctAndInRange() {
    let strategy = SamplingStrategy.random(.count(20))
    let a = strategy.select(available: 100, seed: 42).indices
    let b = strategy.select(available: 100, seed: 42).indices
    let c = strategy.select(available: 100, seed: 43).indices
    #expect(a == b)
    #expect(a != c)
    #expect(Set(a).count == 20)
    #expect(a.allSatisfy { (0..<100).contains($0) })
    #expect(a != Array(a.sorted()))  // the order is shuffled, as the references' random.shuffle is
  }

  @Test func askingForMoreTakesAllAndWarns() {
    let (indices, warning) = SamplingStrategy.random(.count(50)).select(available: 5, seed: 7)
    #expect(indices.sorted() == [0, 1, 2, 3, 4])
    #expect(warning?.contains("only 5 exist") == true)
    #expect(SamplingStrategy.end(.count(3)).select(available: 3, seed: 0).warning == nil)
  }

  @Test func loaderAppliesSamplingToJSONLines() throws {
    let folder = try makeTempFolder()
    try writePNG(folder, "i.png", width: 8, height: 8)
    let lines = (0..<40).map { #"{"image": "i.png", "problem": "q\#($0)", "solution": "<answer> \#($0) </answer>"}"# }
    let path = try writeText(folder, "qa.jsonl", lines.joined(separator: "\n")).path
    func problems(_ strategy: SamplingStrategy, seed: UInt64 = 42) throws -> [Int] {
      var options = LoadOptions()
      options.dataSeed = seed
      return try DatasetLoader.load(path: path, sampling: strategy, options: options).examples.map(\.source.index)
    }
    #expect(try problems(.first(.count(3))) == [0, 1, 2])
    #expect(try problems(.end(.count(2))) == [38, 39])
    let random = try problems(.random(.percent(10)))
    #expect(random == SamplingStrategy.random(.percent(10)).select(available: 40, seed: 42).indices)
    #expect(random.count == 4)
    let loaded = try DatasetLoader.load(path: path, sampling: .first(.count(100)))
    #expect(loaded.examples.count == 40)
    #expect(loaded.summary.warnings.count == 1)
  }
}
