import Datasets
import Foundation
import Generation
import Jinja
import Models
import NIOCore
import NIOPosix
import Prompting

/// What the server is allowed to do.
public struct ServerSettings: Sendable {
  /// The name clients send as `model` and `GET /v1/models` lists.
  public var servedModelName: String
  /// Chat requests admitted at once (generating or waiting for the model); more get a 429.
  public var maxConcurrency: Int = 16
  /// `max_tokens` when a request gives none (bounded by what the context leaves).
  public var defaultMaxTokens: Int = 512
  /// Largest request body accepted; a larger one gets a 413.
  public var maxRequestBytes: Int = 64 << 20

  public init(servedModelName: String, maxConcurrency: Int = 16, defaultMaxTokens: Int = 512, maxRequestBytes: Int = 64 << 20) {
    self.servedModelName = servedModelName
    self.maxConcurrency = maxConcurrency
    self.defaultMaxTokens = defaultMaxTokens
    self.maxRequestBytes = maxRequestBytes
  }
}

/// One answered chat request: its choices and the token counts of `usage`.
public struct ChatCompletion: Sendable {
  public struct Choice: Sendable {
    public var text: String
    /// `stop` (a stop token or stop string ended it) or `length` (max_tokens reached first).
    public var finishReason: String
    /// Tokens generated, the stop token included.
    public var tokens: Int
  }

  public var id: String
  public var created: Int
  public var model: String
  public var choices: [Choice]
  public var promptTokens: Int
  public var completionTokens: Int { choices.reduce(0) { $0 + $1.tokens } }
}

/// The model side of the server: a request's chat through the prompt layer (`PromptBuilder`, the same
/// path as training, evaluation and `vlmrl generate`) and the rollout engine. Generations run one at a
/// time, in arrival order, on one worker thread: the model and its engine are never shared by two
/// requests (batching concurrent requests is left for later, see docs/serve.md).
public final class ChatService: Sendable {
  public let builder: PromptBuilder
  public let engine: RolloutEngine
  public let settings: ServerSettings
  /// Prompt plus completion tokens the model can attend over (`max_position_embeddings`).
  public let contextLength: Int
  private let worker: NIOThreadPool

  public init(model: QwenVLModel, builder: PromptBuilder, settings: ServerSettings) {
    self.builder = builder
    engine = RolloutEngine(model: model)
    self.settings = settings
    contextLength = model.config.text.maxPositionEmbeddings
    worker = NIOThreadPool(numberOfThreads: 1)
    worker.start()
  }

  deinit { worker.shutdownGracefully { _ in } }

  /// Runs `complete` on the worker thread; the future completes on `eventLoop`.
  func submit(_ request: ChatRequest, on eventLoop: EventLoop) -> EventLoopFuture<ChatCompletion> {
    worker.runIfActive(eventLoop: eventLoop) { try self.complete(request) }
  }

  /// Answers one request on the calling thread (callers serialise: the server uses `submit`).
  /// Errors are `ServingError`s.
  public func complete(_ request: ChatRequest) throws(ServingError) -> ChatCompletion {
    if let model = request.model, model != settings.servedModelName {
      throw .notFound("The model '\(model)' does not exist; this server serves '\(settings.servedModelName)'",
                      param: "model", code: "model_not_found")
    }
    let prompt = try prepare(request)
    let room = contextLength - prompt.ids.count
    let maxTokens = request.maxTokens ?? min(settings.defaultMaxTokens, room)
    guard maxTokens <= room, room >= 1 else {
      throw .invalid("This model's maximum context length is \(contextLength) tokens; the messages have \(prompt.ids.count) "
        + "and \(request.maxTokens.map { "max_tokens asks for \($0)" } ?? "leave no room for a completion")",
        param: request.maxTokens == nil ? "messages" : "max_tokens", code: "context_length_exceeded")
    }
    let sampling = SamplingSettings(maxNewTokens: maxTokens, temperature: request.temperature, topP: request.topP,
                                    topK: request.topK, minP: request.minP, repetitionPenalty: request.repetitionPenalty)
    let records: [RolloutRecord]
    do {
      records = try engine.rollouts([prompt], builder: builder, samples: request.n, settings: sampling,
                                    seeds: [request.seed ?? UInt64.random(in: 0...UInt64.max)]).records
    } catch let error as RolloutError {
      switch error {
      case .invalidRequest, .invalidSettings, .insufficientMemory: throw .invalid("\(error)")
      }
    } catch {
      throw .server("generation failed: \(error)")
    }
    let choices = records.map { record in
      Self.choice(text: record.text, tokens: record.tokens.count, truncated: record.truncated, stop: request.stop)
    }
    return ChatCompletion(id: "chatcmpl-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(),
                          created: Int(Date().timeIntervalSince1970), model: settings.servedModelName, choices: choices,
                          promptTokens: prompt.ids.count)
  }

  /// The request's chat as a prepared prompt: every turn through the model's chat template, images
  /// where their parts sit.
  func prepare(_ request: ChatRequest) throws(ServingError) -> PreparedPrompt {
    var images: [ImageInfo] = []
    var userParts: [PromptPart] = []
    let messages = request.messages.map { message -> ChatMessage in
      if message.isPlainText, case .text(let text) = message.parts.first { return ChatMessage(role: message.role, text: text) }
      return ChatMessage(role: message.role, parts: message.parts.map { part in
        switch part {
        case .text(let text):
          if message.role == "user" { userParts.append(.text(text)) }
          return .text(text)
        case .image(let source):
          images.append(ImageInfo(source: source))
          userParts.append(.image(source))
          return .image
        }
      })
    }
    let example = Example(source: RecordLocation(file: "request", index: 0), kind: .sftConversation, prompt: userParts,
                          rewardFields: [:], images: images)
    do {
      return try builder.prepare(example, messages: messages)
    } catch let error as PromptError {
      switch error {
      case .image(_, let message): throw .invalid("image: \(message)", param: "messages", code: "invalid_image")
      case .template(_, let message): throw .invalid("the chat does not fit the model's chat template: \(message)", param: "messages")
      case .tooLong(_, let tokens, let limit):
        throw .invalid("the messages have \(tokens) tokens, over the limit of \(limit)", param: "messages", code: "context_length_exceeded")
      }
    } catch {
      throw .invalid("the messages cannot become a prompt: \(error)", param: "messages")
    }
  }

  /// A choice with the stop strings applied: the text ends before the first occurrence of any.
  static func choice(text: String, tokens: Int, truncated: Bool, stop: [String]) -> ChatCompletion.Choice {
    let cut = stop.compactMap { text.range(of: $0)?.lowerBound }.min()
    if let cut { return .init(text: String(text[..<cut]), finishReason: "stop", tokens: tokens) }
    return .init(text: text, finishReason: truncated ? "length" : "stop", tokens: tokens)
  }
}
