import Foundation
import Testing

@testable import Jinja

/// Small snippets rendered by jinja2 in transformers' chat-template environment
/// (tools/golden/chat_template_snippets.py): same text, or the same class of failure.
enum SnippetFixture {
  struct Snippet: Sendable {
    var template: String
    var expected: String?
    var error: String?
  }

  static let loaded: (variables: [String: JinjaValue], snippets: [Snippet]) = {
    let url = GoldenFixture.directory.appendingPathComponent("chat_template_snippets.json")
    guard let text = try? String(contentsOf: url, encoding: .utf8), case .object(let root)? = try? JinjaValue(json: text),
      case .object(let variables)? = root["variables"], case .array(let cases)? = root["cases"]
    else { fatalError("cannot load \(url.path)") }
    let snippets = cases.compactMap { value -> Snippet? in
      guard case .object(let c) = value, case .string(let template)? = c["template"] else { return nil }
      return Snippet(template: template, expected: c["expected"].map(\.pythonString), error: c["error"].map(\.pythonString))
    }
    return (Dictionary(uniqueKeysWithValues: variables.pairs.map { ($0.key, $0.value) }), snippets)
  }()

  static var indices: [Int] { Array(loaded.snippets.indices) }

  /// jinja2 exception class -> the kind of JinjaError that stands for it.
  static func kind(forPythonError name: String) -> JinjaError.Kind {
    switch name {
    case "UndefinedError": return .undefined
    case "TemplateError": return .raised
    default: return .runtime
    }
  }
}

@Suite struct SnippetTests {
  @Test func fixtureIsComplete() {
    #expect(SnippetFixture.loaded.snippets.count >= 80)
  }

  @Test(arguments: SnippetFixture.indices)
  func matchesJinja2(_ index: Int) throws {
    let snippet = SnippetFixture.loaded.snippets[index]
    let template = try JinjaTemplate(snippet.template, name: "snippet\(index)")
    if let expected = snippet.expected {
      let rendered = try template.render(SnippetFixture.loaded.variables)
      #expect(rendered == expected, "snippet \(index): \(snippet.template.debugDescription)")
    } else {
      let error = try #require(snippet.error)
      #expect(throws: JinjaError.self, "snippet \(index) should fail with \(error)") {
        _ = try template.render(SnippetFixture.loaded.variables)
      }
      do {
        _ = try template.render(SnippetFixture.loaded.variables)
      } catch {
        #expect(error.kind == SnippetFixture.kind(forPythonError: snippet.error ?? ""), "snippet \(index): \(error)")
      }
    }
  }
}
