// Evaluates the parsed template. Scoping follows Jinja: `{% for %}` bodies and macros get a fresh
// frame per iteration/call (so `{% set %}` inside a loop does not leak, which is why templates use
// `namespace`), while `{% if %}` shares its enclosing frame.

final class Renderer {
  private let template: JinjaTemplate
  private var scopes: [[String: JinjaValue]]
  private var output = ""
  private var macroDepth = 0
  private static let maxMacroDepth = 64
  private var evaluationDepth = 0
  /// Deeper expression trees are refused rather than risking the thread's stack.
  private static let maxEvaluationDepth = 256
  private var loopIterations = 0
  /// Total loop iterations allowed in one render, so a hostile template cannot run for hours.
  private let maxLoopIterations: Int
  /// Output beyond this many UTF-8 bytes is an error, so a hostile template cannot exhaust memory.
  static let maxOutputBytes = 64 << 20

  private enum Flow { case normal, breakLoop, continueLoop }

  init(template: JinjaTemplate, context: [String: JinjaValue], maxLoopIterations: Int) {
    self.template = template
    self.maxLoopIterations = maxLoopIterations
    self.scopes = [Globals.all.merging(context) { _, user in user }]
  }

  func renderTemplate() throws(JinjaError) -> String {
    _ = try render(template.nodes)
    return output
  }

  // MARK: statements

  private func render(_ nodes: [Node]) throws(JinjaError) -> Flow {
    for node in nodes {
      let flow = try render(node)
      if flow != .normal { return flow }
    }
    return .normal
  }

  private func render(_ node: Node) throws(JinjaError) -> Flow {
    switch node {
    case .text(let text):
      try emit(text)
    case .output(let expr, let offset):
      let value = try located(offset) { () throws(JinjaError) in try evaluate(expr) }
      try emit(value.pythonString)
    case .ifBlock(let branches, let otherwise, let offset):
      for branch in branches {
        let taken = try located(offset) { () throws(JinjaError) in try evaluate(branch.condition).isTruthy }
        if taken { return try render(branch.body) }
      }
      return try render(otherwise)
    case .forLoop(let loop):
      try renderFor(loop)
    case .set(let target, let expr, let offset):
      try located(offset) { () throws(JinjaError) in try assign(target, try evaluate(expr)) }
    case .setBlock(let name, let body, let filters, let offset):
      var value = JinjaValue.string(try capture(body))
      value = try located(offset) { () throws(JinjaError) in try applyFilters(filters, to: value) }
      scopes[scopes.count - 1][name] = value
    case .macro(let macro):
      scopes[scopes.count - 1][macro.name] = .callable(JinjaCallable(macro: macro))
    case .filterBlock(let body, let filters, let offset):
      let text = JinjaValue.string(try capture(body))
      let value = try located(offset) { () throws(JinjaError) in try applyFilters(filters, to: text) }
      try emit(value.pythonString)
    case .breakLoop: return .breakLoop
    case .continueLoop: return .continueLoop
    case .generation(let body):
      return try render(body)
    }
    return .normal
  }

  private func emit(_ text: String) throws(JinjaError) {
    output += text
    if output.utf8.count > Self.maxOutputBytes {
      throw JinjaError.runtime("rendered output exceeds \(Self.maxOutputBytes) bytes")
    }
  }

  /// Renders `body` into a string instead of the output (block `set`, `filter`, macros).
  private func capture(_ body: [Node]) throws(JinjaError) -> String {
    let saved = output
    output = ""
    defer { output = saved }
    _ = try render(body)
    return output
  }

  private func applyFilters(_ filters: [(String, Arguments)], to value: JinjaValue) throws(JinjaError) -> JinjaValue {
    var value = value
    for (name, args) in filters {
      value = try Filters.apply(name, to: value, try evaluate(args), renderer: self)
    }
    return value
  }

  /// Runs `body`, attaching the tag's line and column to errors that have none yet.
  private func located<T>(_ offset: Int, _ body: () throws(JinjaError) -> T) throws(JinjaError) -> T {
    do {
      return try body()
    } catch {
      var located = error
      if located.line == nil {
        let (line, column) = template.sourceMap.location(offset)
        located.line = line
        located.column = column
      }
      throw located
    }
  }

  private func renderFor(_ loop: ForLoop) throws(JinjaError) {
    var items = try located(loop.offset) { () throws(JinjaError) in
      try Operators.iterate(try evaluate(loop.iterable), what: "for loop")
    }
    if let filter = loop.filter {
      var kept: [JinjaValue] = []
      for item in items {
        scopes.append([:])
        defer { scopes.removeLast() }
        try located(loop.offset) { () throws(JinjaError) in try bindTargets(loop.targets, item) }
        if try located(loop.offset, { () throws(JinjaError) in try evaluate(filter).isTruthy }) { kept.append(item) }
      }
      items = kept
    }
    if items.isEmpty {
      _ = try render(loop.otherwise)
      return
    }
    for (index, item) in items.enumerated() {
      loopIterations += 1
      if loopIterations > maxLoopIterations {
        throw JinjaError.runtime("more than \(maxLoopIterations) loop iterations")
      }
      scopes.append(["loop": LoopInfo.value(index: index, items: items)])
      defer { scopes.removeLast() }
      try located(loop.offset) { () throws(JinjaError) in try bindTargets(loop.targets, item) }
      if try render(loop.body) == .breakLoop { break }
    }
  }

  private func bindTargets(_ targets: [String], _ item: JinjaValue) throws(JinjaError) {
    if targets.count == 1 {
      scopes[scopes.count - 1][targets[0]] = item
      return
    }
    let parts = try Operators.iterate(item, what: "unpacking")
    guard parts.count == targets.count else {
      throw JinjaError.runtime("cannot unpack \(parts.count) values into \(targets.count) names")
    }
    for (name, part) in zip(targets, parts) { scopes[scopes.count - 1][name] = part }
  }

  private func assign(_ target: SetTarget, _ value: JinjaValue) throws(JinjaError) {
    switch target {
    case .names(let names):
      try bindTargets(names, value)
    case .attribute(let name, let attribute):
      guard case .namespace(let namespace) = lookup(name) else {
        throw JinjaError.runtime("cannot assign attribute '\(attribute)' on '\(name)': not a namespace")
      }
      namespace.set(attribute, value)
    }
  }

  // MARK: expressions

  func lookup(_ name: String) -> JinjaValue {
    for frame in scopes.reversed() {
      if let value = frame[name] { return value }
    }
    return .undefined
  }

  func evaluate(_ args: Arguments) throws(JinjaError) -> CallArguments {
    var result = CallArguments()
    for expr in args.positional { result.positional.append(try evaluate(expr)) }
    for (key, expr) in args.keyword { result.keyword.append((key, try evaluate(expr))) }
    return result
  }

  func evaluate(_ expr: Expr) throws(JinjaError) -> JinjaValue {
    evaluationDepth += 1
    defer { evaluationDepth -= 1 }
    guard evaluationDepth <= Self.maxEvaluationDepth else {
      throw JinjaError.runtime("expression nested deeper than \(Self.maxEvaluationDepth) levels")
    }
    return try evaluateNode(expr)
  }

  private func evaluateNode(_ expr: Expr) throws(JinjaError) -> JinjaValue {
    switch expr {
    case .literal(let value): return value
    case .name(let name): return lookup(name)
    case .list(let items):
      var values: [JinjaValue] = []
      values.reserveCapacity(items.count)
      for item in items { values.append(try evaluate(item)) }
      return .array(values)
    case .dict(let pairs):
      var object = JinjaObject()
      for (keyExpr, valueExpr) in pairs {
        object[try evaluate(keyExpr).pythonString] = try evaluate(valueExpr)
      }
      return .object(object)
    case .attribute(let base, let name):
      return try Operators.attribute(try evaluate(base), name, describe: Describe.expr(base))
    case .item(let base, let index):
      return try Operators.item(try evaluate(base), try evaluate(index), describe: Describe.expr(base))
    case .slice(let base, let start, let stop, let step):
      return try Operators.slice(
        try evaluate(base), start: try start.map(evaluate), stop: try stop.map(evaluate),
        step: try step.map(evaluate))
    case .call(let callee, let args):
      return try evaluateCall(callee, args)
    case .filter(let base, let name, let args):
      return try Filters.apply(name, to: try evaluate(base), try evaluate(args), renderer: self)
    case .test(let base, let name, let args, let negated):
      let value = try evaluate(base)
      let result = try Tests.apply(name, to: value, try evaluate(args).positional, renderer: self)
      return .bool(result != negated)
    case .unary(let op, let operand):
      return try Operators.unary(op, try evaluate(operand), describe: Describe.expr(operand))
    case .binary(let op, let left, let right):
      return try Operators.binary(op, try evaluate(left), try evaluate(right))
    case .compare(let first, let rest):
      var left = try evaluate(first)
      for (op, rightExpr) in rest {
        let right = try evaluate(rightExpr)
        if !(try Operators.compare(op, left, right)) { return .bool(false) }
        left = right
      }
      return .bool(true)
    case .and(let left, let right):
      let l = try evaluate(left)
      return l.isTruthy ? try evaluate(right) : l
    case .or(let left, let right):
      let l = try evaluate(left)
      return l.isTruthy ? l : try evaluate(right)
    case .conditional(let condition, let then, let otherwise):
      if try evaluate(condition).isTruthy { return try evaluate(then) }
      return try otherwise.map(evaluate) ?? .undefined
    }
  }

  private func evaluateCall(_ callee: Expr, _ args: Arguments) throws(JinjaError) -> JinjaValue {
    if case .attribute(let baseExpr, let name) = callee {
      let base = try evaluate(baseExpr)
      let arguments = try evaluate(args)
      if case .object(let object) = base, case .callable(let f)? = object[name] {
        return try call(f, arguments)
      }
      if case .namespace(let ns) = base, case .callable(let f)? = ns[name] {
        return try call(f, arguments)
      }
      return try Methods.call(name, on: base, arguments, describe: Describe.expr(baseExpr))
    }
    let function = try evaluate(callee)
    guard case .callable(let f) = function else {
      if function.isUndefined { throw JinjaError.undefined("\(Describe.expr(callee)) is undefined") }
      throw JinjaError.runtime("'\(function.typeName)' object is not callable")
    }
    return try call(f, try evaluate(args))
  }

  func call(_ function: JinjaCallable, _ args: CallArguments) throws(JinjaError) -> JinjaValue {
    switch function.body {
    case .builtin(let body):
      do {
        return try body(args.positional, args.keyword)
      } catch let error as JinjaError {
        throw error
      } catch {
        throw JinjaError.runtime("\(function.name): \(error)")
      }
    case .macro(let macro):
      return try callMacro(macro, args)
    }
  }

  private func callMacro(_ macro: Macro, _ args: CallArguments) throws(JinjaError) -> JinjaValue {
    guard args.positional.count <= macro.parameters.count else {
      throw JinjaError.runtime("macro '\(macro.name)' takes not more than \(macro.parameters.count) argument(s)")
    }
    guard macroDepth < Self.maxMacroDepth else {
      throw JinjaError.runtime("macro recursion deeper than \(Self.maxMacroDepth)")
    }
    var frame: [String: JinjaValue] = [:]
    for (i, parameter) in macro.parameters.enumerated() {
      if i < args.positional.count {
        frame[parameter.name] = args.positional[i]
      } else if let value = args.keyword.last(where: { $0.0 == parameter.name })?.1 {
        frame[parameter.name] = value
      } else if let defaultValue = parameter.defaultValue {
        frame[parameter.name] = try evaluate(defaultValue)
      } else {
        frame[parameter.name] = .undefined
      }
    }
    for (key, _) in args.keyword where !macro.parameters.contains(where: { $0.name == key }) {
      throw JinjaError.runtime("macro '\(macro.name)' takes no keyword argument '\(key)'")
    }
    // A macro sees the template's top-level variables and its own arguments.
    let savedScopes = scopes
    scopes = [scopes[0], frame]
    macroDepth += 1
    defer {
      macroDepth -= 1
      scopes = savedScopes
    }
    return .string(try capture(macro.body))
  }
}

/// Evaluated call arguments.
struct CallArguments {
  var positional: [JinjaValue] = []
  var keyword: [(String, JinjaValue)] = []

  func keywordValue(_ name: String) -> JinjaValue? { keyword.last { $0.0 == name }?.1 }

  /// The argument at `index` or named `name`, in Python's calling convention.
  func argument(_ index: Int, _ name: String) -> JinjaValue? {
    index < positional.count ? positional[index] : keywordValue(name)
  }
}

/// The `loop` variable of a for loop.
enum LoopInfo {
  static func value(index: Int, items: [JinjaValue]) -> JinjaValue {
    let count = items.count
    let cycle = JinjaCallable(name: "cycle") { args, _ in
      guard !args.isEmpty else { throw JinjaError.runtime("no items for cycling given") }
      return args[index % args.count]
    }
    return .object(JinjaObject([
      ("index", .int(index + 1)), ("index0", .int(index)),
      ("revindex", .int(count - index)), ("revindex0", .int(count - index - 1)),
      ("first", .bool(index == 0)), ("last", .bool(index == count - 1)),
      ("length", .int(count)), ("depth", .int(1)), ("depth0", .int(0)),
      ("previtem", index > 0 ? items[index - 1] : .undefined),
      ("nextitem", index + 1 < count ? items[index + 1] : .undefined),
      ("cycle", .callable(cycle)),
    ]))
  }
}

/// Short source-like names for expressions, used in "'x' is undefined" messages.
enum Describe {
  static func expr(_ expr: Expr) -> String {
    switch expr {
    case .name(let name): return "'\(name)'"
    case .attribute(let base, let name): return "'\(plain(base)).\(name)'"
    case .item(let base, _): return "'\(plain(base))[...]'"
    default: return "value"
    }
  }

  private static func plain(_ expr: Expr) -> String {
    let text = Self.expr(expr)
    return text.hasPrefix("'") ? String(text.dropFirst().dropLast()) : text
  }
}
