import Foundation
import Testing

@testable import Jinja

/// Renderings by transformers' `apply_chat_template` (tools/golden/chat_template_golden.py); every
/// case must match byte for byte, or fail the way Python failed.
enum GoldenFixture {
  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

  struct Case: Sendable {
    var name: String
    var template: String
    var messages: [JinjaValue]
    var tools: [JinjaValue]?
    var addGenerationPrompt: Bool
    var kwargs: [String: JinjaValue]
    var expected: String?
    var errorType: String?
    var errorMessage: String?
  }

  struct Loaded: Sendable {
    var cases: [Case]
    var templates: [String: String]
    var specialTokens: [String: JinjaValue]
  }

  static let loaded: Loaded = {
    do { return try load() } catch { fatalError("cannot load golden fixture: \(error)") }
  }()

  static var caseNames: [String] { loaded.cases.map(\.name) }

  static func templateSource(_ name: String) throws -> String {
    try String(contentsOf: directory.appendingPathComponent("templates/\(name).jinja"), encoding: .utf8)
  }

  private static func load() throws -> Loaded {
    let text = try String(contentsOf: directory.appendingPathComponent("chat_template_golden.json"), encoding: .utf8)
    guard case .object(let root) = try JinjaValue(json: text),
      case .array(let rawCases)? = root["cases"], case .object(let inline)? = root["inline_templates"],
      case .object(let special)? = root["special_tokens"]
    else { throw JinjaError(.syntax, "golden fixture: unexpected layout") }
    var templates: [String: String] = [:]
    for (key, value) in inline.pairs { templates[key] = value.pythonString }
    let files = try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("templates").path)
    for file in files where file.hasSuffix(".jinja") {
      let name = String(file.dropLast(".jinja".count))
      templates[name] = try templateSource(name)
    }
    var cases: [Case] = []
    for raw in rawCases {
      guard case .object(let c) = raw, case .array(let messages)? = c["messages"],
        case .object(let kwargs)? = c["kwargs"]
      else { throw JinjaError(.syntax, "golden fixture: bad case") }
      var tools: [JinjaValue]? = nil
      if case .array(let t)? = c["tools"] { tools = t }
      var errorType: String? = nil
      var errorMessage: String? = nil
      if case .object(let e)? = c["error"] {
        errorType = e["type"]?.pythonString
        errorMessage = e["message"]?.pythonString
      }
      cases.append(Case(
        name: c["name"]?.pythonString ?? "?", template: c["template"]?.pythonString ?? "?",
        messages: messages, tools: tools, addGenerationPrompt: c["add_generation_prompt"]?.isTruthy ?? false,
        kwargs: Dictionary(uniqueKeysWithValues: kwargs.pairs.map { ($0.key, $0.value) }),
        expected: c["expected"].map(\.pythonString), errorType: errorType, errorMessage: errorMessage))
    }
    return Loaded(cases: cases, templates: templates,
                  specialTokens: Dictionary(uniqueKeysWithValues: special.pairs.map { ($0.key, $0.value) }))
  }
}

@Suite struct GoldenTests {
  @Test func fixtureHasEnoughCases() {
    #expect(GoldenFixture.loaded.cases.count >= 40)
    #expect(GoldenFixture.loaded.cases.filter { $0.template == "qwen2_vl_instruct" }.count >= 12)
    #expect(GoldenFixture.loaded.cases.filter { $0.template == "qwen2_5_instruct" }.count >= 8)
  }

  @Test(arguments: GoldenFixture.caseNames)
  func rendersLikeTransformers(_ name: String) throws {
    let loaded = GoldenFixture.loaded
    let golden = try #require(loaded.cases.first { $0.name == name })
    let source = try #require(loaded.templates[golden.template])
    let template = try ChatTemplate(source: source, name: golden.template)
    let extra = loaded.specialTokens.merging(golden.kwargs) { _, kwarg in kwarg }
    let render = {
      try template.render(messages: golden.messages, addGenerationPrompt: golden.addGenerationPrompt,
                          tools: golden.tools, extra: extra)
    }
    if let expected = golden.expected {
      let rendered = try render()
      #expect(rendered == expected, "case \(name)")
      if rendered != expected { print(firstDifference(rendered, expected)) }
    } else {
      do {
        let rendered = try render()
        Issue.record("case \(name) should fail (\(golden.errorType ?? "")) but rendered \(rendered.debugDescription)")
      } catch let error as JinjaError {
        if golden.errorType == "TemplateError" {
          #expect(error.kind == .raised)
          #expect(error.message == golden.errorMessage)
        } else {
          #expect(error.kind == .runtime)
        }
      }
    }
  }

  private func firstDifference(_ a: String, _ b: String) -> String {
    let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
    var i = 0
    while i < min(x.count, y.count), x[i] == y[i] { i += 1 }
    func around(_ s: [Unicode.Scalar]) -> String {
      String(String.UnicodeScalarView(s[max(0, i - 40)..<min(s.count, i + 40)])).debugDescription
    }
    return "first difference at scalar \(i):\n  swift:  \(around(x))\n  python: \(around(y))"
  }
}
