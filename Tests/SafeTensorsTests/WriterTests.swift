import Foundation
import Testing

@testable import SafeTensors

func u8Tensor(_ name: String, count: Int, fill: UInt8) -> TensorToWrite {
  TensorToWrite(name: name, dtype: .uint8, shape: [count], bytes: [UInt8](repeating: fill, count: count))
}

@Suite struct WriterTests {
  @Test func emptyFileMatchesReferenceLayout() throws {
    // The reference library's own test vectors for an empty dict, without and with metadata.
    try withTemporaryDirectory { folder in
      let url = folder.appendingPathComponent("e.safetensors")
      try SafeTensorsWriter.write([], metadata: nil, to: url)
      #expect([UInt8](try Data(contentsOf: url)) == [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8))
      try SafeTensorsWriter.write([], metadata: ["framework": "pt"], to: url)
      #expect([UInt8](try Data(contentsOf: url)) == [40, 0, 0, 0, 0, 0, 0, 0] + Array("{\"__metadata__\":{\"framework\":\"pt\"}}     ".utf8))
    }
  }

  @Test func streamsBytesInPieces() throws {
    try withTemporaryDirectory { folder in
      let url = folder.appendingPathComponent("p.safetensors")
      let values: [Float] = (0..<1000).map { Float($0) * 0.5 }
      let tensor = TensorToWrite(name: "w", dtype: .float32, shape: [10, 100], byteCount: 4000) { sink in
        try values.withUnsafeBytes { raw in
          for start in stride(from: 0, to: raw.count, by: 1500) {
            try sink(UnsafeRawBufferPointer(rebasing: raw[start..<min(start + 1500, raw.count)]))
          }
        }
      }
      try SafeTensorsWriter.write([tensor], to: url)
      let file = try SafeTensorsFile(url: url)
      #expect(file.metadata == ["format": "pt"])
      #expect(try file.elements("w", as: Float.self) == values)
      #expect(file.header.dataStart % 8 == 0)
    }
  }

  @Test func producerErrorsLeaveNoFile() throws {
    struct Boom: Error {}
    try withTemporaryDirectory { folder throws in
      let url = folder.appendingPathComponent("x.safetensors")
      let short = TensorToWrite(name: "w", dtype: .uint8, shape: [4], byteCount: 4) { sink in
        try [UInt8](repeating: 1, count: 3).withUnsafeBytes { try sink($0) }
      }
      #expect(throws: SafeTensorsError.self) { try SafeTensorsWriter.write([short], to: url) }
      let failing = TensorToWrite(name: "w", dtype: .uint8, shape: [4], byteCount: 4) { _ in throw Boom() }
      #expect(throws: SafeTensorsError.self) { try SafeTensorsWriter.write([failing], to: url) }
      #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }
  }

  @Test func rejectsInconsistentTensors() throws {
    try withTemporaryDirectory { folder in
      let url = folder.appendingPathComponent("x.safetensors")
      let wrongSize = TensorToWrite(name: "w", dtype: .float32, shape: [3], bytes: [0, 0, 0, 0])
      #expect(throws: SafeTensorsError.self) { try SafeTensorsWriter.write([wrongSize], to: url) }
      #expect(throws: SafeTensorsError.self) { try SafeTensorsWriter.write([u8Tensor("a", count: 1, fill: 0), u8Tensor("a", count: 1, fill: 0)], to: url) }
      #expect(throws: SafeTensorsError.self) { try SafeTensorsWriter.write([u8Tensor("__metadata__", count: 1, fill: 0)], to: url) }
      #expect(!FileManager.default.fileExists(atPath: url.path))
    }
  }

  @Test func shardPlanFollowsHuggingFace() {
    // Sizes 4, 4, 3, 10, 2 with a limit of 8: [4,4] [3] (10 alone) [2] — the oversize tensor
    // gets its own shard without closing the current one.
    let tensors = [("a", 4), ("b", 4), ("c", 3), ("big", 10), ("d", 2)].map { u8Tensor($0.0, count: $0.1, fill: 1) }
    let plan = SafeTensorsWriter.planShards(tensors, maxShardSize: 8).map { $0.map(\.name) }
    #expect(plan == [["a", "b"], ["big"], ["c", "d"]])
    #expect(SafeTensorsWriter.shardFileName(2, of: 13) == "model-00002-of-00013.safetensors")
  }

  @Test func shardedCheckpointRoundTrip() throws {
    try withTemporaryDirectory { folder in
      let tensors = (0..<5).map { u8Tensor("layer.\($0)", count: 6, fill: UInt8($0)) }
      let result = try SafeTensorsWriter.writeCheckpoint(tensors, to: folder, maxShardSize: 12)
      #expect(result.files == ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"])
      let indexText = try String(contentsOf: folder.appendingPathComponent("model.safetensors.index.json"), encoding: .utf8)
      #expect(indexText == """
        {
          "metadata": {
            "total_size": 30
          },
          "weight_map": {
            "layer.0": "model-00001-of-00003.safetensors",
            "layer.1": "model-00001-of-00003.safetensors",
            "layer.2": "model-00002-of-00003.safetensors",
            "layer.3": "model-00002-of-00003.safetensors",
            "layer.4": "model-00003-of-00003.safetensors"
          }
        }

        """)
      let weights = try ShardedSafeTensors(directory: folder)
      #expect(weights.names == tensors.map(\.name))
      #expect(try weights.file(containing: "layer.3").url.lastPathComponent == "model-00002-of-00003.safetensors")
      for index in 0..<5 {
        #expect(Array(try weights.bytes("layer.\(index)")) == [UInt8](repeating: UInt8(index), count: 6))
      }
      #expect(throws: SafeTensorsError.self) { try weights.info("missing") }

      // Saving again as one file removes the shards and the index of the earlier save.
      let single = try SafeTensorsWriter.writeCheckpoint(tensors, to: folder)
      #expect(single.files == ["model.safetensors"])
      #expect(single.index == nil)
      #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == ["model.safetensors"])
      let reopened = try ShardedSafeTensors(directory: folder)
      #expect(reopened.index == nil)
      #expect(Array(try reopened.bytes("layer.4")) == [UInt8](repeating: 4, count: 6))
    }
  }

  @Test func indexValidation() throws {
    try withTemporaryDirectory { folder in
      let url = folder.appendingPathComponent(SafeTensorsIndex.fileName)
      for bad in ["{}", #"{"weight_map":{"a":"../x.safetensors"}}"#, #"{"weight_map":{"a":1}}"#,
                  #"{"metadata":{"total_size":-1},"weight_map":{}}"#, "nope"] {
        try Data(bad.utf8).write(to: url)
        #expect(throws: SafeTensorsError.self, "\(bad)") { try SafeTensorsIndex(url: url) }
      }
      try Data(#"{"metadata":{"total_size":5,"format":"pt"},"weight_map":{"a":"s1.safetensors","b":"s0.safetensors"}}"#.utf8).write(to: url)
      let index = try SafeTensorsIndex(url: url)
      #expect(index.totalSize == 5)
      #expect(index.shardFiles == ["s0.safetensors", "s1.safetensors"])
      // A shard listed in the index but missing on disk is reported when first needed.
      let weights = try ShardedSafeTensors(directory: folder)
      #expect(throws: SafeTensorsError.self) { try weights.bytes("a") }
    }
  }

  @Test func pythonStyleIndexEscaping() {
    #expect(SafeTensorsIndex.pythonJSONString("é\"\u{1F600}") == #""\u00e9\"\ud83d\ude00""#)
  }
}
