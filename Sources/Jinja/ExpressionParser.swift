// Expression grammar inside one tag (jinja2.parser: parse_condexpr ... parse_unary, parse_postfix,
// parse_filter_expr).

struct TokenStream {
  private let tokens: [Token]
  private var position = 0
  let statementOffset: Int
  private let sourceMap: SourceMap
  /// Nesting guard, so a hostile template cannot overflow the stack.
  private var depth = 0
  private static let maxDepth = 100

  init(tokens: [Token], statementOffset: Int, sourceMap: SourceMap) {
    self.tokens = tokens
    self.statementOffset = statementOffset
    self.sourceMap = sourceMap
  }

  // MARK: token helpers

  var peek: Token? { position < tokens.count ? tokens[position] : nil }

  mutating func advance() { position += 1 }

  func peekOp(_ op: String) -> Bool { peek?.kind == .op(op) }

  func peekName(_ name: String) -> Bool { peek?.kind == .name(name) }

  mutating func skipOp(_ op: String) -> Bool {
    guard peekOp(op) else { return false }
    position += 1
    return true
  }

  mutating func skipName(_ name: String) -> Bool {
    guard peekName(name) else { return false }
    position += 1
    return true
  }

  mutating func expectOp(_ op: String) throws(JinjaError) {
    guard skipOp(op) else { throw unexpected(expected: "'\(op)'") }
  }

  mutating func expectName(_ name: String) throws(JinjaError) {
    guard skipName(name) else { throw unexpected(expected: "'\(name)'") }
  }

  mutating func expectIdentifier() throws(JinjaError) -> String {
    guard case .name(let name)? = peek?.kind else { throw unexpected(expected: "a name") }
    position += 1
    return name
  }

  func expectEnd() throws(JinjaError) {
    if peek != nil { throw unexpected(expected: "end of tag") }
  }

  func error(_ message: String, at offset: Int) -> JinjaError {
    let (line, column) = sourceMap.location(offset)
    return JinjaError(.syntax, message, line: line, column: column)
  }

  private func unexpected(expected: String) -> JinjaError {
    guard let token = peek else {
      return error("expected \(expected), found end of tag", at: tokens.last?.offset ?? statementOffset)
    }
    return error("expected \(expected), found \(describe(token.kind))", at: token.offset)
  }

  private func describe(_ kind: TokenKind) -> String {
    switch kind {
    case .name(let n): return "'\(n)'"
    case .string(let s): return "string \(PythonString.repr(s))"
    case .int(let i): return "\(i)"
    case .double(let d): return PythonFloat.repr(d)
    case .op(let o): return "'\(o)'"
    }
  }

  private mutating func nested<T>(_ body: (inout TokenStream) throws(JinjaError) -> T) throws(JinjaError) -> T {
    depth += 1
    defer { depth -= 1 }
    guard depth < Self.maxDepth else {
      throw error("expression nested too deeply", at: peek?.offset ?? statementOffset)
    }
    return try body(&self)
  }

  // MARK: statements' pieces

  /// `x` or `a, b` or `(a, b)` as for-loop targets.
  mutating func parseTargetNames() throws(JinjaError) -> [String] {
    let parenthesized = skipOp("(")
    var names = [try expectIdentifier()]
    while skipOp(",") {
      if parenthesized && peekOp(")") { break }
      names.append(try expectIdentifier())
    }
    if parenthesized { try expectOp(")") }
    return names
  }

  /// `name(args) | name ...` after `{% filter` or `{% set x |`.
  mutating func parseFilterChain() throws(JinjaError) -> [(String, Arguments)] {
    var filters: [(String, Arguments)] = []
    _ = skipOp("|")
    repeat {
      let name = try parseDottedName()
      let args = peekOp("(") ? try parseCallArguments() : Arguments()
      filters.append((name, args))
    } while skipOp("|")
    return filters
  }

  // MARK: expressions

  /// An expression, or a tuple when commas separate several (`{{ a, b }}`, `{% set x = 1, 2 %}`).
  mutating func parseTuple(withCondition: Bool = true) throws(JinjaError) -> Expr {
    let first = withCondition ? try parseExpression() : try parseOr()
    guard peekOp(",") else { return first }
    var items = [first]
    while skipOp(",") {
      if peek == nil { break }
      items.append(withCondition ? try parseExpression() : try parseOr())
    }
    return .list(items)
  }

  mutating func parseExpression() throws(JinjaError) -> Expr {
    try nested { s throws(JinjaError) in
      var expr = try s.parseOr()
      while s.skipName("if") {
        let condition = try s.parseOr()
        let otherwise = s.skipName("else") ? try s.parseExpression() : nil
        expr = .conditional(condition: condition, then: expr, otherwise: otherwise)
      }
      return expr
    }
  }

  private mutating func parseOr() throws(JinjaError) -> Expr {
    var left = try parseAnd()
    while skipName("or") { left = .or(left, try parseAnd()) }
    return left
  }

  private mutating func parseAnd() throws(JinjaError) -> Expr {
    var left = try parseNot()
    while skipName("and") { left = .and(left, try parseNot()) }
    return left
  }

  private mutating func parseNot() throws(JinjaError) -> Expr {
    if skipName("not") { return .unary(.not, try nested { s throws(JinjaError) in try s.parseNot() }) }
    return try parseCompare()
  }

  private mutating func parseCompare() throws(JinjaError) -> Expr {
    let left = try parseMath1()
    var ops: [(CompareOp, Expr)] = []
    while true {
      if case .op(let op)? = peek?.kind, let compare = CompareOp(rawValue: op), compare != .isIn {
        advance()
        ops.append((compare, try parseMath1()))
      } else if skipName("in") {
        ops.append((.isIn, try parseMath1()))
      } else if peekName("not"), position + 1 < tokens.count, tokens[position + 1].kind == .name("in") {
        position += 2
        ops.append((.notIn, try parseMath1()))
      } else {
        break
      }
    }
    return ops.isEmpty ? left : .compare(left, ops)
  }

  private mutating func parseMath1() throws(JinjaError) -> Expr {
    var left = try parseConcat()
    while true {
      if skipOp("+") {
        left = .binary(.add, left, try parseConcat())
      } else if skipOp("-") {
        left = .binary(.subtract, left, try parseConcat())
      } else {
        return left
      }
    }
  }

  private mutating func parseConcat() throws(JinjaError) -> Expr {
    var left = try parseMath2()
    while skipOp("~") { left = .binary(.concat, left, try parseMath2()) }
    return left
  }

  private mutating func parseMath2() throws(JinjaError) -> Expr {
    var left = try parsePow()
    while case .op(let op)? = peek?.kind, ["*", "/", "//", "%"].contains(op), let binary = BinaryOp(rawValue: op) {
      advance()
      left = .binary(binary, left, try parsePow())
    }
    return left
  }

  private mutating func parsePow() throws(JinjaError) -> Expr {
    var left = try parseUnary(withFilter: true)
    while skipOp("**") { left = .binary(.power, left, try parseUnary(withFilter: true)) }
    return left
  }

  private mutating func parseUnary(withFilter: Bool) throws(JinjaError) -> Expr {
    try nested { s throws(JinjaError) in
      var expr: Expr
      if s.skipOp("-") {
        expr = .unary(.negate, try s.parseUnary(withFilter: false))
      } else if s.skipOp("+") {
        expr = .unary(.plus, try s.parseUnary(withFilter: false))
      } else {
        expr = try s.parsePrimary()
      }
      expr = try s.parsePostfix(expr)
      return withFilter ? try s.parseFilterExpr(expr) : expr
    }
  }

  private mutating func parsePrimary() throws(JinjaError) -> Expr {
    guard let token = peek else { throw unexpected(expected: "an expression") }
    advance()
    switch token.kind {
    case .name(let name):
      switch name {
      case "true", "True": return .literal(.bool(true))
      case "false", "False": return .literal(.bool(false))
      case "none", "None": return .literal(.none)
      default: return .name(name)
      }
    case .string(var text):
      while case .string(let more)? = peek?.kind {
        text += more
        advance()
      }
      return .literal(.string(text))
    case .int(let i): return .literal(.int(i))
    case .double(let d): return .literal(.double(d))
    case .op("("):
      if skipOp(")") { return .list([]) }
      let first = try parseExpression()
      if skipOp(")") { return first }
      var items = [first]
      while skipOp(",") {
        if peekOp(")") { break }
        items.append(try parseExpression())
      }
      try expectOp(")")
      return .list(items)
    case .op("["):
      var items: [Expr] = []
      while !skipOp("]") {
        if !items.isEmpty { try expectOp(",") }
        if skipOp("]") { break }
        items.append(try parseExpression())
      }
      return .list(items)
    case .op("{"):
      var pairs: [(Expr, Expr)] = []
      while !skipOp("}") {
        if !pairs.isEmpty { try expectOp(",") }
        if skipOp("}") { break }
        let key = try parseExpression()
        try expectOp(":")
        pairs.append((key, try parseExpression()))
      }
      return .dict(pairs)
    default:
      position -= 1
      throw unexpected(expected: "an expression")
    }
  }

  private mutating func parsePostfix(_ base: Expr) throws(JinjaError) -> Expr {
    var expr = base
    while true {
      if skipOp(".") {
        guard let token = peek else { throw unexpected(expected: "an attribute name") }
        advance()
        switch token.kind {
        case .name(let name): expr = .attribute(expr, name)
        case .int(let i): expr = .item(expr, .literal(.int(i)))
        default:
          position -= 1
          throw unexpected(expected: "an attribute name")
        }
      } else if skipOp("[") {
        expr = try parseSubscript(expr)
      } else if peekOp("(") {
        expr = .call(expr, try parseCallArguments())
      } else {
        return expr
      }
    }
  }

  private mutating func parseSubscript(_ base: Expr) throws(JinjaError) -> Expr {
    var parts: [Expr?] = [nil]
    var sawColon = false
    if !peekOp(":") { parts[0] = try parseExpression() }
    while skipOp(":") {
      sawColon = true
      parts.append(peekOp(":") || peekOp("]") ? nil : try parseExpression())
    }
    try expectOp("]")
    guard sawColon else {
      guard let index = parts[0] else { throw unexpected(expected: "an index") }
      return .item(base, index)
    }
    guard parts.count <= 3 else { throw error("too many ':' in slice", at: statementOffset) }
    return .slice(base, start: parts[0], stop: parts.count > 1 ? parts[1] : nil,
                  step: parts.count > 2 ? parts[2] : nil)
  }

  private mutating func parseFilterExpr(_ base: Expr) throws(JinjaError) -> Expr {
    var expr = base
    while true {
      if skipOp("|") {
        let name = try parseDottedName()
        let args = peekOp("(") ? try parseCallArguments() : Arguments()
        expr = .filter(expr, name: name, args)
      } else if skipName("is") {
        let negated = skipName("not")
        let name = try parseDottedName()
        var args = Arguments()
        if peekOp("(") {
          args = try parseCallArguments()
        } else if let token = peek, startsTestArgument(token.kind) {
          if token.kind == .name("is") { throw error("cannot chain multiple tests with 'is'", at: token.offset) }
          args.positional = [try parsePostfix(try parsePrimary())]
        }
        expr = .test(expr, name: name, args, negated: negated)
      } else if peekOp("(") {
        expr = .call(expr, try parseCallArguments())
      } else {
        return expr
      }
    }
  }

  private func startsTestArgument(_ kind: TokenKind) -> Bool {
    switch kind {
    case .name(let n): return !["else", "or", "and"].contains(n)
    case .string, .int, .double: return true
    case .op(let o): return o == "(" || o == "[" || o == "{"
    }
  }

  private mutating func parseDottedName() throws(JinjaError) -> String {
    var name = try expectIdentifier()
    while skipOp(".") { name += "." + (try expectIdentifier()) }
    return name
  }

  mutating func parseCallArguments() throws(JinjaError) -> Arguments {
    try expectOp("(")
    var args = Arguments()
    while !skipOp(")") {
      if !args.positional.isEmpty || !args.keyword.isEmpty { try expectOp(",") }
      if skipOp(")") { break }
      if peekOp("*") || peekOp("**") {
        throw JinjaError(.unsupported, "*args and **kwargs in calls are not supported",
          line: sourceMap.location(peek?.offset ?? 0).line, column: sourceMap.location(peek?.offset ?? 0).column)
      }
      if case .name(let key)? = peek?.kind, position + 1 < tokens.count, tokens[position + 1].kind == .op("=") {
        position += 2
        args.keyword.append((key, try parseExpression()))
      } else {
        guard args.keyword.isEmpty else { throw error("positional argument after keyword argument", at: peek?.offset ?? statementOffset) }
        args.positional.append(try parseExpression())
      }
    }
    return args
  }
}
