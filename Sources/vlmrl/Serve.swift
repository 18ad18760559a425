import ArgumentParser
import Foundation
import Hub
import ModelConfig
import Models
import Prompting
import Serving
import Torch

/// `vlmrl serve`: an OpenAI-compatible chat-completions server over a model folder (docs/serve.md).
struct Serve: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Serve a model over HTTP with the OpenAI chat-completions API (POST /v1/chat/completions).")
  @Option(help: "Model folder or hub id (downloaded into the Hugging Face cache when missing).") var model: String
  @Option(help: "Address to listen on.") var host = "127.0.0.1"
  @Option(help: "Port to listen on (0 = any free port).") var port = 8000
  @Option(help: "cpu or cuda[:i].") var device = "cpu"
  @Option(help: "float32, bfloat16 or float16 (default: bfloat16 on CUDA, float32 on CPU).") var dtype: String?
  @Option(help: "Chat requests admitted at once, generating or waiting; more get HTTP 429.") var maxConcurrency = 16
  @Option(help: "The model name clients send and /v1/models lists (default: the folder's name).") var servedModelName: String?
  @Option(help: "max_tokens of a request that gives none (bounded by the context).") var defaultMaxTokens = 512
  @Option(help: "Largest request body in MiB (images included).") var maxRequestMib = 64

  func run() async throws {
    let device = try usableDevice(device)
    let dtypeName = dtype ?? (device.isCUDA ? "bfloat16" : "float32")
    guard let dtype = DType(name: dtypeName) else { throw ValidationError("--dtype: unknown dtype '\(dtypeName)'") }
    guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
    guard maxConcurrency >= 1 else { throw ValidationError("--max-concurrency must be at least 1, got \(maxConcurrency)") }
    guard defaultMaxTokens >= 1 else { throw ValidationError("--default-max-tokens must be at least 1, got \(defaultMaxTokens)") }
    guard (1...4096).contains(maxRequestMib) else { throw ValidationError("--max-request-mib must be in 1...4096, got \(maxRequestMib)") }
    let folder = try ModelFolder(directory: try await HubModels.resolve(model))
    let name = servedModelName ?? folder.directory.standardizedFileURL.lastPathComponent
    let builder = try PromptBuilder(folder: folder)
    let qwen = try QwenVLModel.load(folder: folder, dtype: dtype, device: device)
    qwen.switches = KernelSwitches.fromEnvironment()
    let settings = ServerSettings(servedModelName: name, maxConcurrency: maxConcurrency, defaultMaxTokens: defaultMaxTokens,
                                  maxRequestBytes: maxRequestMib << 20)
    let server = ChatServer(service: ChatService(model: qwen, builder: builder, settings: settings))
    let bound = try await server.start(host: host, port: port)
    print("vlmrl serve: \(name) on http://\(host):\(bound)/v1 (\(device), \(dtypeName)); POST /v1/chat/completions, GET /v1/models, GET /health")
    try await server.waitUntilClosed()
  }
}
