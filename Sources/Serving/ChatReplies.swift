import Common

/// The OpenAI reply objects of a completion: `chat.completion`, and the `chat.completion.chunk`s of a
/// streamed reply (made from the finished completion; see docs/serve.md).
enum ChatReplies {
  /// Characters per streamed content piece.
  static let pieceLength = 16

  static func completion(_ completion: ChatCompletion) -> JSONValue {
    .object([
      "id": .string(completion.id), "object": .string("chat.completion"), "created": .int(completion.created),
      "model": .string(completion.model),
      "choices": .array(completion.choices.enumerated().map { index, choice in
        .object([
          "index": .int(index), "message": .object(["role": .string("assistant"), "content": .string(choice.text)]),
          "logprobs": .null, "finish_reason": .string(choice.finishReason),
        ])
      }),
      "usage": usage(completion),
    ])
  }

  static func usage(_ completion: ChatCompletion) -> JSONValue {
    .object([
      "prompt_tokens": .int(completion.promptTokens), "completion_tokens": .int(completion.completionTokens),
      "total_tokens": .int(completion.promptTokens + completion.completionTokens),
    ])
  }

  /// Per choice: the role, the text in pieces, the finish reason; then, when asked, a chunk with
  /// no choices and the usage (as OpenAI's `stream_options.include_usage`).
  static func chunks(_ completion: ChatCompletion, includeUsage: Bool) -> [JSONValue] {
    func chunk(_ index: Int, _ delta: [String: JSONValue], finish: String? = nil) -> JSONValue {
      var object: [String: JSONValue] = [
        "id": .string(completion.id), "object": .string("chat.completion.chunk"), "created": .int(completion.created),
        "model": .string(completion.model),
        "choices": .array([.object(["index": .int(index), "delta": .object(delta), "logprobs": .null,
                                    "finish_reason": finish.map { .string($0) } ?? .null])]),
      ]
      if includeUsage { object["usage"] = .null }
      return .object(object)
    }
    var chunks: [JSONValue] = []
    for (index, choice) in completion.choices.enumerated() {
      chunks.append(chunk(index, ["role": .string("assistant"), "content": .string("")]))
      chunks += pieces(choice.text).map { chunk(index, ["content": .string($0)]) }
      chunks.append(chunk(index, [:], finish: choice.finishReason))
    }
    if includeUsage {
      chunks.append(.object([
        "id": .string(completion.id), "object": .string("chat.completion.chunk"), "created": .int(completion.created),
        "model": .string(completion.model), "choices": .array([]), "usage": usage(completion),
      ]))
    }
    return chunks
  }

  /// The text cut into pieces of at most `pieceLength` characters (whole grapheme clusters).
  static func pieces(_ text: String) -> [String] {
    var pieces: [String] = []
    var rest = Substring(text)
    while !rest.isEmpty {
      pieces.append(String(rest.prefix(pieceLength)))
      rest = rest.dropFirst(pieceLength)
    }
    return pieces
  }
}
