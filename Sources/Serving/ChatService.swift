import Datasets
import Foundation
import Generation
import Jinja
import Models
import NIOCore
import NIOPosix
import Prompting
import Synchronization

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
/// path as training, evaluation and `vlmrl generate`) and the rollout engine. One worker thread owns
/// the model: the requests that wait while a generation runs are answered together by the next
/// engine call, one call per group of requests with the same sampling settings and lengths (each
/// with its own seed), as training batches its prompts (docs/serve.md, "Batching").
public final class ChatService: Sendable {
  public let builder: PromptBuilder
  public let engine: RolloutEngine
  public let settings: ServerSettings
  /// Prompt plus completion tokens the model can attend over (`max_position_embeddings`).
  public let contextLength: Int
  private let worker: NIOThreadPool
  private let waiting = Mutex<[(request: ChatRequest, promise: EventLoopPromise<ChatCompletion>)]>([])
  private let calls = Atomic<Int>(0)
  /// Engine calls made so far (one per group of requests answered together).
  public var engineCalls: Int { calls.load(ordering: .relaxed) }

  public init(model: QwenVLModel, builder: PromptBuilder, settings: ServerSettings) {
    self.builder = builder
    engine = RolloutEngine(model: model)
    self.settings = settings
    contextLength = model.config.text.maxPositionEmbeddings
    worker = NIOThreadPool(numberOfThreads: 1)
    worker.start()
  }

  deinit { worker.shutdownGracefully { _ in } }

  /// Queues the request for the worker thread; the future completes on `eventLoop`. Each call
  /// schedules a drain, and a drain answers everything waiting at that moment.
  func submit(_ request: ChatRequest, on eventLoop: EventLoop) -> EventLoopFuture<ChatCompletion> {
    let promise = eventLoop.makePromise(of: ChatCompletion.self)
    waiting.withLock { $0.append((request, promise)) }
    worker.submit { [self] state in
      let batch = waiting.withLock { queue in
        defer { queue.removeAll() }
        return queue
      }
      guard case .active = state else {
        for entry in batch { entry.promise.fail(ServingError.server("the server is shutting down")) }
        return
      }
      guard !batch.isEmpty else { return }
      for (entry, result) in zip(batch, complete(batch.map(\.request))) {
        entry.promise.completeWith(result.mapError { $0 as Error })
      }
    }
    return promise.futureResult
  }

  /// Answers one request on the calling thread (callers serialise: the server uses `submit`).
  /// Errors are `ServingError`s.
  public func complete(_ request: ChatRequest) throws(ServingError) -> ChatCompletion {
    try complete([request])[0].get()
  }

  /// What one group of requests shares in an engine call.
  struct BatchKey: Hashable {
    var samples: Int, maxTokens: Int, temperature: Double, topP: Double, topK: Int, minP: Double, repetitionPenalty: Double
  }

  /// Answers requests together (callers serialise): each request's prompt is prepared and checked on
  /// its own (its errors are its own), then every group of requests with the same sampling settings,
  /// `n` and `max_tokens` runs as one engine call with each request's seed. Results in request order.
  public func complete(_ requests: [ChatRequest]) -> [Result<ChatCompletion, ServingError>] {
    var results = [Result<ChatCompletion, ServingError>?](repeating: nil, count: requests.count)
    var groups: [BatchKey: [(index: Int, prompt: PreparedPrompt)]] = [:]
    var order: [BatchKey] = []
    for (index, request) in requests.enumerated() {
      do {
        let (prompt, key) = try admit(request)
        if groups[key] == nil { order.append(key) }
        groups[key, default: []].append((index, prompt))
      } catch {
        results[index] = .failure(error)
      }
    }
    for key in order {
      let members = groups[key]!
      let sampling = SamplingSettings(maxNewTokens: key.maxTokens, temperature: key.temperature, topP: key.topP,
                                      topK: key.topK, minP: key.minP, repetitionPenalty: key.repetitionPenalty)
      let seeds = members.map { requests[$0.index].seed ?? UInt64.random(in: 0...UInt64.max) }
      let records: [RolloutRecord]
      calls.add(1, ordering: .relaxed)
      do {
        records = try engine.rollouts(members.map(\.prompt), builder: builder, samples: key.samples, settings: sampling,
                                      seeds: seeds).records
      } catch {
        let failure: ServingError
        if let error = error as? RolloutError {
          switch error {
          case .invalidRequest, .invalidSettings, .insufficientMemory: failure = .invalid("\(error)")
          }
        } else {
          failure = .server("generation failed: \(error)")
        }
        for member in members { results[member.index] = .failure(failure) }
        continue
      }
      for (position, member) in members.enumerated() {
        let request = requests[member.index]
        let own = records[(position * key.samples)..<((position + 1) * key.samples)]
        let choices = own.map { record in
          Self.choice(text: record.text, tokens: record.tokens.count, truncated: record.truncated, stop: request.stop)
        }
        results[member.index] = .success(ChatCompletion(
          id: "chatcmpl-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(),
          created: Int(Date().timeIntervalSince1970), model: settings.servedModelName, choices: choices,
          promptTokens: member.prompt.ids.count))
      }
    }
    return results.map { $0! }
  }

  /// The request's prompt and its group, or the error that answers it (unknown model, a chat that
  /// cannot become a prompt, no room in the context).
  func admit(_ request: ChatRequest) throws(ServingError) -> (PreparedPrompt, BatchKey) {
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
    return (prompt, BatchKey(samples: request.n, maxTokens: maxTokens, temperature: request.temperature, topP: request.topP,
                             topK: request.topK, minP: request.minP, repetitionPenalty: request.repetitionPenalty))
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
