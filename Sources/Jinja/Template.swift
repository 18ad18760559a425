/// A parsed Jinja template. Parse once, render many times; rendering does not mutate the template,
/// so one value can be shared across threads.
public struct JinjaTemplate: Sendable {
  public let name: String
  let nodes: [Node]
  let sourceMap: SourceMap

  /// Parses `source` with Hugging Face's chat-template environment settings (`trim_blocks=True`,
  /// `lstrip_blocks=True`). `name` appears in error messages.
  public init(_ source: String, name: String = "<template>") throws(JinjaError) {
    self.name = name
    let scalars = Lexer.normalize(source)
    sourceMap = SourceMap(scalars)
    do {
      var lexer = Lexer(source: scalars)
      var parser = Parser(segments: try lexer.tokenize(), sourceMap: sourceMap)
      nodes = try parser.parseTemplate()
    } catch {
      var located = error
      located.templateName = name
      throw located
    }
  }

  /// Renders with the given variables. The Hugging Face globals (`raise_exception`, `namespace`,
  /// `range`, `dict`, `strftime_now`) are always available; `context` entries override them.
  public func render(_ context: [String: JinjaValue]) throws(JinjaError) -> String {
    try render(context, maxLoopIterations: Self.defaultMaxLoopIterations)
  }

  /// Loop iterations allowed per render (all loops together) before rendering fails.
  public static let defaultMaxLoopIterations = 5_000_000

  func render(_ context: [String: JinjaValue], maxLoopIterations: Int) throws(JinjaError) -> String {
    let renderer = Renderer(template: self, context: context, maxLoopIterations: maxLoopIterations)
    do {
      return try renderer.renderTemplate()
    } catch {
      var located = error
      located.templateName = name
      throw located
    }
  }
}
