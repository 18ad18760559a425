import Common

/// A request the server cannot answer, as an OpenAI-compatible server reports it: the HTTP status
/// and the `{"error": {"message", "type", "param", "code"}}` object. `param` names the request field
/// at fault (`messages[1].content[0].image_url.url`), so a client can act on it.
public struct ServingError: Error, CustomStringConvertible, Sendable, Equatable {
  public var status: Int
  public var message: String
  public var type: String
  public var param: String?
  public var code: String?

  public init(status: Int, message: String, type: String, param: String? = nil, code: String? = nil) {
    self.status = status
    self.message = message
    self.type = type
    self.param = param
    self.code = code
  }

  /// 400: the request is malformed or asks for something this server does not do.
  public static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> ServingError {
    ServingError(status: 400, message: message, type: "invalid_request_error", param: param, code: code)
  }

  /// A field that OpenAI defines (or nobody does) and this server does not honour.
  static func unsupported(_ field: String, _ why: String) -> ServingError {
    .invalid("'\(field)' is not supported by vlmrl serve: \(why)", param: field, code: "unsupported_parameter")
  }

  public static func notFound(_ message: String, param: String? = nil, code: String? = nil) -> ServingError {
    ServingError(status: 404, message: message, type: "invalid_request_error", param: param, code: code)
  }

  /// 500: a failure of the server itself, not of the request.
  public static func server(_ message: String) -> ServingError {
    ServingError(status: 500, message: message, type: "server_error", code: "internal_error")
  }

  public var description: String { "\(status) \(type): \(message)" }

  /// The response body.
  public var json: JSONValue {
    .object(["error": .object([
      "message": .string(message), "type": .string(type),
      "param": param.map { .string($0) } ?? .null, "code": code.map { .string($0) } ?? .null,
    ])])
  }
}
