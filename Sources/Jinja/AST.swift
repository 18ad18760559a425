// The parsed form of a template: statements (nodes) and expressions.

indirect enum Expr: Sendable {
  case literal(JinjaValue)
  case name(String)
  case list([Expr])
  case dict([(Expr, Expr)])
  case attribute(Expr, String)
  case item(Expr, Expr)
  case slice(Expr, start: Expr?, stop: Expr?, step: Expr?)
  case call(Expr, Arguments)
  case filter(Expr, name: String, Arguments)
  case test(Expr, name: String, Arguments, negated: Bool)
  case unary(UnaryOp, Expr)
  case binary(BinaryOp, Expr, Expr)
  case compare(Expr, [(CompareOp, Expr)])
  case and(Expr, Expr)
  case or(Expr, Expr)
  case conditional(condition: Expr, then: Expr, otherwise: Expr?)
}

struct Arguments: Sendable {
  var positional: [Expr] = []
  var keyword: [(String, Expr)] = []
}

enum UnaryOp: Sendable { case negate, plus, not }

enum BinaryOp: String, Sendable {
  case add = "+", subtract = "-", multiply = "*", divide = "/", floorDivide = "//", modulo = "%"
  case power = "**", concat = "~"
}

enum CompareOp: String, Sendable {
  case equal = "==", notEqual = "!=", less = "<", lessEqual = "<=", greater = ">", greaterEqual = ">="
  case isIn = "in", notIn = "not in"
}

/// Where `{% set %}` stores its value.
enum SetTarget: Sendable {
  case names([String])
  case attribute(name: String, attribute: String)
}

indirect enum Node: Sendable {
  case text(String)
  case output(Expr, offset: Int)
  case ifBlock(branches: [(condition: Expr, body: [Node])], otherwise: [Node], offset: Int)
  case forLoop(ForLoop)
  case set(SetTarget, Expr, offset: Int)
  case setBlock(name: String, body: [Node], filters: [(String, Arguments)], offset: Int)
  case macro(Macro)
  case filterBlock(body: [Node], filters: [(String, Arguments)], offset: Int)
  case breakLoop(offset: Int)
  case continueLoop(offset: Int)
  /// Hugging Face's `{% generation %}` tag: marks assistant text for masks; renders its body as is.
  case generation([Node])
}

struct ForLoop: Sendable {
  var targets: [String]
  var iterable: Expr
  var filter: Expr?
  var body: [Node]
  var otherwise: [Node]
  var offset: Int
}

/// A `{% macro name(params) %}` definition.
struct Macro: Sendable {
  var name: String
  var parameters: [(name: String, defaultValue: Expr?)]
  var body: [Node]
}
