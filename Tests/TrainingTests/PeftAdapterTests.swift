import Foundation
import NN
import SafeTensors
import Testing
@testable import Models
@testable import Torch
@testable import Training

/// An adapter written by peft (tools/golden/peft_adapter.py) loads onto vlmrl's model and gives
/// peft's logits; vlmrl writes adapters back in the same layout.
extension TinyModelTests {
@Suite(.serialized) struct PeftAdapterTests {
  static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
  static let adapterFolder = fixtures.appendingPathComponent("peft_adapter")
  static let reference = fixtures.appendingPathComponent("../../ModelsTests/Fixtures/qwen25vl_tied/reference.safetensors")

  func tensor(_ file: SafeTensorsFile, _ name: String) throws -> Tensor {
    let info = try file.info(name)
    return Tensor(bytes: try file.bytes(name), shape: info.shape, dtype: try #require(DType(safeTensors: info.dtype)))
  }

  func relativeError(_ a: Tensor, _ b: Tensor) -> Double { (a - b).abs().max().item() / b.abs().max().item() }

  @Test func peftAdapterGivesPeftLogits() throws {
    let model = try QwenVLModel.load(directory: TinySetup.modelFolder)
    model.eval()
    let config = try model.loadAdapter(directory: Self.adapterFolder)
    #expect(config.rank == 4 && config.alpha == 8)
    // peft matched gate_proj / down_proj in the vision MLPs too (suffix matching): 2 x 4 + 4 x 2 modules.
    #expect(LoRA.adapters(in: model).count == 16)
    let expected = try SafeTensorsFile(url: Self.adapterFolder.appendingPathComponent("expected.safetensors"))
    let ids = try tensor(expected, "text_input_ids").ints()
    let textLogits = try withNoGrad { try model.logits(ids: ids)[0] }
    #expect(relativeError(textLogits, try tensor(expected, "text_logits")) <= 1e-4)

    let reference = try SafeTensorsFile(url: Self.reference.standardizedFileURL)
    let codes = try tensor(reference, "pixel_codes").to(.int64).reshape(-1, 3, 196)
    let table = try tensor(reference, "pixel_table")
    let values = table.unsqueeze(0).expand(codes.size(0), 3, 256).gather(2, codes)
    let pixels = Tensor.stack([values, values], dim: 2).reshape(codes.size(0), 1176)
    let imageIDs = try tensor(reference, "input_ids").ints()
    let grids = [try tensor(reference, "image_grid_thw").ints()]
    let imageLogits = try withNoGrad { try model.logits(ids: imageIDs, pixelValues: pixels, grids: grids)[0] }
    let last4 = imageLogits.narrow(0, start: imageLogits.size(0) - 4, length: 4)
    let imageError = relativeError(last4, try tensor(expected, "image_logits_last4"))
    #expect(imageError <= 1e-4, "image logits: relative error \(imageError)")

    // Disabled adapters give the base model, whose logits differ from peft's adapted ones.
    let base = try LoRA.withAdaptersDisabled(model) { try withNoGrad { try model.logits(ids: ids)[0] } }
    #expect(relativeError(base, try tensor(expected, "text_logits")) > 1e-2)
  }

  @Test func savedAdapterKeepsPeftKeysAndLoadsBack() throws {
    let folder = TinySetup.temporaryFolder("adapter-save")
    defer { try? FileManager.default.removeItem(at: folder) }
    let model = try QwenVLModel.load(directory: TinySetup.modelFolder)
    let config = try model.loadAdapter(directory: Self.adapterFolder)
    try model.saveAdapter(config, baseModel: "tiny", to: folder)
    let original = try SafeTensorsFile(url: Self.adapterFolder.appendingPathComponent("adapter_model.safetensors"))
    let written = try SafeTensorsFile(url: folder.appendingPathComponent("adapter_model.safetensors"))
    #expect(Set(written.names) == Set(original.names))
    for name in original.names { #expect(try tensor(written, name).maxAbsDifference(try tensor(original, name)) == 0, "\(name)") }
  }
}
}
