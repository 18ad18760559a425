import Foundation
import ModelConfig
import SafeTensors
import Testing
@testable import Models
@testable import Torch

/// Reference outputs recorded by tools/golden/qwen_vl_golden.py with transformers (fp32, eager).
struct Reference {
  let folder: URL
  let file: SafeTensorsFile
  let json: [String: Any]

  init(_ caseName: String, reference: String = "reference") throws {
    folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(caseName)")
    file = try SafeTensorsFile(url: folder.appendingPathComponent("\(reference).safetensors"))
    json = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("\(reference).json"))) as! [String: Any]
  }

  func tensor(_ name: String) throws -> Tensor {
    let info = try file.info(name)
    let bytes = try file.bytes(name)
    return Tensor(bytes: bytes, shape: info.shape, dtype: DType(safeTensors: info.dtype)!)
  }
  func ints(_ name: String) throws -> [Int] { try tensor(name).ints() }

  /// pixel_values `[N, 1176]` rebuilt from the byte codes of the first frame and the per-channel table:
  /// value[n, c*392 + t*196 + k] = table[c, codes[n, c*196 + k]].
  func pixelValues() throws -> Tensor {
    let codes = try tensor("pixel_codes").to(.int64).reshape(-1, 3, 196)
    let table = try tensor("pixel_table")
    let rows = codes.size(0)
    let values = table.unsqueeze(0).expand(rows, 3, 256).gather(2, codes)  // [N, 3, 196]
    return Tensor.stack([values, values], dim: 2).reshape(rows, 1176)
  }

  var grids: [[Int]] { get throws { try ints("image_grid_thw").chunked(3) } }
}

extension Array {
  func chunked(_ size: Int) -> [[Element]] { stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) } }
}

/// max |a - b| / max |b|, the relative error used for parity bars.
func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
  a.to(.float64).maxAbsDifference(b.to(.float64)) / Swift.max(b.to(.float64).abs().max().item(), 1e-30)
}

@Suite(.serialized) struct ParityTests {
  static let cases = ["qwen25vl_tied", "qwen25vl_untied_two_images", "qwen2vl"]

  @Test(arguments: cases) func ropePositionsMatchExactly(_ name: String) throws {
    let reference = try Reference(name)
    let model = try QwenVLModel.load(directory: reference.folder)
    let ids = try reference.ints("input_ids")
    let positions = model.ropePositions(promptIDs: ids, imageGrids: try reference.grids)
    #expect(positions.channels.flatMap { $0 } == (try reference.ints("position_ids")))
    #expect(positions.delta == (try reference.ints("rope_deltas"))[0])
  }

  @Test(arguments: cases) func visionTowerMatches(_ name: String) throws {
    let reference = try Reference(name)
    let model = try QwenVLModel.load(directory: reference.folder)
    let grids = try reference.grids
    if model.config.family == .qwen25VL {
      let (index, segments) = VisionLayout.windows(grids: grids, mergeSize: 2, windowTokens: 4)
      #expect(index == (try reference.ints("window_index")))
      #expect([0] + segments.reduce(into: [Int]()) { $0.append(($0.last ?? 0) + $1) } == (try reference.ints("cu_window_seqlens")))
    }
    let output = withNoGrad { model.visual(try! reference.pixelValues(), grids: grids) }
    let expected = try reference.tensor("vision_output")
    #expect(output.shape == expected.shape)
    #expect(relativeError(output, expected) < 1e-4)
  }

  @Test(arguments: cases) func logitsMatch(_ name: String) throws {
    let reference = try Reference(name)
    let model = try QwenVLModel.load(directory: reference.folder)
    let ids = try reference.ints("input_ids")
    let logits = try withNoGrad { try model.logits(ids: ids, pixelValues: try reference.pixelValues(), grids: try reference.grids) }[0]
    let last8 = try reference.tensor("logits_last8")
    let vocab = last8.size(-1)
    #expect(logits.size(-1) == vocab)
    #expect(relativeError(logits.narrow(0, start: ids.count - 8, length: 8), last8) < 1e-4)
    #expect(relativeError(logits.sum(dim: -1), try reference.tensor("logits_sum")) < 1e-4)
    #expect(logits.argmax(dim: -1).ints() == (try reference.ints("logits_argmax")))
  }

  @Test(arguments: cases) func completionLogProbsMatch(_ name: String) throws {
    let reference = try Reference(name)
    let model = try QwenVLModel.load(directory: reference.folder)
    let prompt = try reference.ints("input_ids"), completion = try reference.ints("completion_ids")
    let logProbs = try withNoGrad {
      let hidden = try model.hiddenStates(ids: prompt + completion, promptLength: prompt.count,
                                          pixelValues: try reference.pixelValues(), grids: try reference.grids)[0]
      return model.tokenLogProbs(hidden: hidden.narrow(0, start: prompt.count - 1, length: completion.count),
                                 targets: Tensor(completion), chunkRows: 5)
    }
    let expected = try reference.tensor("completion_logprobs")
    #expect(logProbs.to(.float64).maxAbsDifference(expected.to(.float64)) < 1e-4)
  }

  @Test(arguments: cases) func greedyGenerationMatches(_ name: String) throws {
    let reference = try Reference(name)
    let model = try QwenVLModel.load(directory: reference.folder)
    var options = GenerationOptions()
    options.maxNewTokens = 20
    let result = try model.generate(promptIDs: try reference.ints("input_ids"), pixelValues: try reference.pixelValues(),
                                    grids: try reference.grids, options: options)
    #expect(result.tokens == (try reference.ints("generated_ids")))
  }

  @Test func textOnlyPromptMatches() throws {
    let reference = try Reference("qwen25vl_tied", reference: "reference_text_only")
    let model = try QwenVLModel.load(directory: reference.folder)
    let ids = try reference.ints("input_ids")
    let positions = model.ropePositions(promptIDs: ids, imageGrids: [])
    #expect(positions.channels.flatMap { $0 } == (try reference.ints("position_ids")))
    let logits = try withNoGrad { try model.logits(ids: ids) }[0]
    #expect(relativeError(logits.narrow(0, start: ids.count - 8, length: 8), try reference.tensor("logits_last8")) < 1e-4)
    var options = GenerationOptions()
    options.maxNewTokens = 20
    #expect(try model.generate(promptIDs: ids, options: options).tokens == (try reference.ints("generated_ids")))
  }
}
