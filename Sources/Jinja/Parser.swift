// Builds nodes from lexer segments. Statement grammar and expression precedence follow
// jinja2.parser.Parser (condexpr < or < and < not < compare < + - < ~ < * / // % < ** < unary,
// then postfix `.attr`, `[sub]`, `(call)`, `|filter`, `is test`).

struct Parser {
  private let segments: [Segment]
  private var index = 0
  private let sourceMap: SourceMap
  private var blockDepth = 0
  /// Deeper block nesting is refused, so parsing and rendering stay well inside the stack.
  private static let maxBlockDepth = 100

  init(segments: [Segment], sourceMap: SourceMap) {
    self.segments = segments
    self.sourceMap = sourceMap
  }

  mutating func parseTemplate() throws(JinjaError) -> [Node] {
    let (nodes, end) = try parseBody(until: [])
    if let end { throw end.stream.error("unexpected '\(end.keyword)'", at: end.stream.statementOffset) }
    return nodes
  }

  /// A statement that ended a body: its keyword and the tokens after it.
  private struct Terminator {
    var keyword: String
    var stream: TokenStream
  }

  /// Parses nodes until a statement whose keyword is in `terminators` (returned) or the end (nil).
  private mutating func parseBody(until terminators: Set<String>) throws(JinjaError) -> ([Node], Terminator?) {
    blockDepth += 1
    defer { blockDepth -= 1 }
    guard blockDepth <= Self.maxBlockDepth else {
      throw JinjaError(.syntax, "blocks nested deeper than \(Self.maxBlockDepth) levels")
    }
    var nodes: [Node] = []
    while index < segments.count {
      let segment = segments[index]
      index += 1
      switch segment {
      case .text(let text): nodes.append(.text(text))
      case .output(let tokens, let offset):
        var stream = TokenStream(tokens: tokens, statementOffset: offset, sourceMap: sourceMap)
        let expr = try stream.parseTuple()
        try stream.expectEnd()
        nodes.append(.output(expr, offset: offset))
      case .statement(let tokens, let offset):
        var stream = TokenStream(tokens: tokens, statementOffset: offset, sourceMap: sourceMap)
        guard case .name(let keyword)? = stream.peek?.kind else {
          throw stream.error("expected a tag name", at: offset)
        }
        stream.advance()
        if terminators.contains(keyword) { return (nodes, Terminator(keyword: keyword, stream: stream)) }
        nodes.append(try parseStatement(keyword, &stream, offset: offset))
      }
    }
    if !terminators.isEmpty {
      let expected = terminators.sorted().map { "'\($0)'" }.joined(separator: " or ")
      throw JinjaError(.syntax, "unexpected end of template, expected \(expected)")
    }
    return (nodes, nil)
  }

  private mutating func parseStatement(
    _ keyword: String, _ stream: inout TokenStream, offset: Int
  ) throws(JinjaError) -> Node {
    switch keyword {
    case "if": return try parseIf(&stream, offset: offset)
    case "for": return try parseFor(&stream, offset: offset)
    case "set": return try parseSet(&stream, offset: offset)
    case "macro": return try parseMacro(&stream)
    case "filter":
      let filters = try stream.parseFilterChain()
      try stream.expectEnd()
      let (body, _) = try parseBody(until: ["endfilter"])
      return .filterBlock(body: body, filters: filters, offset: offset)
    case "break", "continue":
      try stream.expectEnd()
      return keyword == "break" ? .breakLoop(offset: offset) : .continueLoop(offset: offset)
    case "generation":
      try stream.expectEnd()
      let (body, _) = try parseBody(until: ["endgeneration"])
      return .generation(body)
    default:
      let known: Set<String> = [
        "include", "import", "from", "extends", "block", "call", "with", "autoescape", "trans", "do",
      ]
      let what = known.contains(keyword) ? "unsupported tag" : "unknown tag"
      throw JinjaError(
        known.contains(keyword) ? .unsupported : .syntax, "\(what) '\(keyword)'",
        line: sourceMap.location(offset).line, column: sourceMap.location(offset).column)
    }
  }

  private mutating func parseIf(_ stream: inout TokenStream, offset: Int) throws(JinjaError) -> Node {
    var branches: [(condition: Expr, body: [Node])] = []
    var condition = try stream.parseExpression()
    try stream.expectEnd()
    while true {
      let (body, end) = try parseBody(until: ["elif", "else", "endif"])
      branches.append((condition, body))
      guard var end else { break }
      switch end.keyword {
      case "elif":
        condition = try end.stream.parseExpression()
        try end.stream.expectEnd()
      case "else":
        try end.stream.expectEnd()
        let (otherwise, _) = try parseBody(until: ["endif"])
        return .ifBlock(branches: branches, otherwise: otherwise, offset: offset)
      default:
        try end.stream.expectEnd()
        return .ifBlock(branches: branches, otherwise: [], offset: offset)
      }
    }
    return .ifBlock(branches: branches, otherwise: [], offset: offset)
  }

  private mutating func parseFor(_ stream: inout TokenStream, offset: Int) throws(JinjaError) -> Node {
    let targets = try stream.parseTargetNames()
    try stream.expectName("in")
    let iterable = try stream.parseTuple(withCondition: false)
    var filter: Expr? = nil
    if stream.skipName("if") { filter = try stream.parseExpression() }
    if stream.skipName("recursive") {
      throw JinjaError(.unsupported, "recursive for loops are not supported",
        line: sourceMap.location(offset).line, column: sourceMap.location(offset).column)
    }
    try stream.expectEnd()
    let (body, end) = try parseBody(until: ["endfor", "else"])
    var otherwise: [Node] = []
    if let end, end.keyword == "else" {
      try end.stream.expectEnd()
      (otherwise, _) = try parseBody(until: ["endfor"])
    } else if let end {
      try end.stream.expectEnd()
    }
    return .forLoop(ForLoop(targets: targets, iterable: iterable, filter: filter, body: body,
                            otherwise: otherwise, offset: offset))
  }

  private mutating func parseSet(_ stream: inout TokenStream, offset: Int) throws(JinjaError) -> Node {
    let first = try stream.expectIdentifier()
    var target = SetTarget.names([first])
    if stream.skipOp(".") {
      target = .attribute(name: first, attribute: try stream.expectIdentifier())
    } else if stream.peekOp(",") {
      var names = [first]
      while stream.skipOp(",") { names.append(try stream.expectIdentifier()) }
      target = .names(names)
    }
    if stream.skipOp("=") {
      let value = try stream.parseTuple()
      try stream.expectEnd()
      return .set(target, value, offset: offset)
    }
    guard case .names(let names) = target, names.count == 1 else {
      throw stream.error("expected '=' in set", at: offset)
    }
    let filters = stream.peekOp("|") ? try stream.parseFilterChain() : []
    try stream.expectEnd()
    let (body, _) = try parseBody(until: ["endset"])
    return .setBlock(name: first, body: body, filters: filters, offset: offset)
  }

  private mutating func parseMacro(_ stream: inout TokenStream) throws(JinjaError) -> Node {
    let name = try stream.expectIdentifier()
    var parameters: [(name: String, defaultValue: Expr?)] = []
    try stream.expectOp("(")
    while !stream.skipOp(")") {
      if !parameters.isEmpty { try stream.expectOp(",") }
      if stream.skipOp(")") { break }
      let parameter = try stream.expectIdentifier()
      let defaultValue = stream.skipOp("=") ? try stream.parseExpression() : nil
      parameters.append((parameter, defaultValue))
    }
    try stream.expectEnd()
    let (body, _) = try parseBody(until: ["endmacro"])
    return .macro(Macro(name: name, parameters: parameters, body: body))
  }
}
