import ArgumentParser
import Foundation
import Models
import SafeTensors
import Torch

/// `vlmrl forward`: teacher-forced log-probs (and the vision-tower output) of one sequence read from
/// a safetensors file, written to another. This is how parity with transformers is measured on a GPU
/// machine (bench/models_parity.py) and how users check a converted checkpoint.
struct Forward: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Teacher-forced log-probs of a sequence (input_ids, prompt_length, pixel_values, image_grid_thw).")
  @Option(help: "Model folder.") var model: String
  @Option(help: "safetensors with input_ids [L] int64, prompt_length [] int64, optional pixel_values [N, 1176] and image_grid_thw [n, 3].")
  var inputs: String
  @Option(help: "Output safetensors: logprobs [L - prompt_length] float32, vision_output [M, D] float32.") var out: String
  @Option(help: "cpu or cuda[:i].") var device = "cpu"
  @Option(help: "float32 or bfloat16.") var dtype = "float32"

  func run() throws {
    let device = try usableDevice(device)
    guard let dtype = DType(name: dtype) else { throw ValidationError("--dtype: unknown dtype '\(self.dtype)'") }
    let file = try SafeTensorsFile(url: URL(fileURLWithPath: inputs))
    func tensor(_ name: String) throws -> Tensor? {
      guard file.contains(name) else { return nil }
      let info = try file.info(name)
      return Tensor(bytes: try file.bytes(name), shape: info.shape, dtype: try tensorType(of: info.dtype, name))
    }
    guard let idsTensor = try tensor("input_ids"), let promptTensor = try tensor("prompt_length") else {
      throw ValidationError("\(inputs): needs input_ids and prompt_length")
    }
    let ids = idsTensor.ints(), promptLength = promptTensor.itemInt()
    let grids = try tensor("image_grid_thw").map { t in stride(from: 0, to: t.count, by: 3).map { Array(t.ints()[$0..<$0 + 3]) } } ?? []
    let pixels = try tensor("pixel_values")?.to(device)
    let loadStart = Date()
    let qwen = try QwenVLModel.load(directory: URL(fileURLWithPath: model), dtype: dtype, device: device)
    qwen.switches = KernelSwitches.fromEnvironment()
    print("loaded \(model) (\(qwen.config.family.rawValue), \(qwen.parameterCount) parameters) in "
      + String(format: "%.1f s", Date().timeIntervalSince(loadStart)))
    let (logProbs, vision) = try withNoGrad {
      let hidden = try qwen.hiddenStates(ids: ids, promptLength: promptLength, pixelValues: pixels, grids: grids)[0]
      let completion = Array(ids[promptLength...])
      let logProbs = qwen.tokenLogProbs(hidden: hidden.narrow(0, start: promptLength - 1, length: completion.count),
                                        targets: Tensor(completion).to(device))
      let vision = pixels.map { qwen.visual($0, grids: grids).to(.float32, device: .cpu).contiguous() }
      return (logProbs.to(.float32, device: .cpu).contiguous(), vision)
    }
    var outputs = [TensorToWrite(name: "logprobs", dtype: .float32, shape: logProbs.shape, byteCount: logProbs.byteCount) { sink in
      try sink(UnsafeRawBufferPointer(start: logProbs.dataPointer, count: logProbs.byteCount))
    }]
    if let vision {
      outputs.append(TensorToWrite(name: "vision_output", dtype: .float32, shape: vision.shape, byteCount: vision.byteCount) { sink in
        try sink(UnsafeRawBufferPointer(start: vision.dataPointer, count: vision.byteCount))
      })
    }
    try SafeTensorsWriter.write(outputs, to: URL(fileURLWithPath: out))
    print("wrote \(out): logprobs \(logProbs.shape)" + (vision.map { ", vision_output \($0.shape)" } ?? ""))
  }

  func tensorType(of type: TensorDType, _ name: String) throws -> DType {
    guard let dtype = DType(safeTensors: type) else {
      throw ValidationError("\(inputs): \(name) has unsupported dtype \(type.rawValue)")
    }
    return dtype
  }
}
