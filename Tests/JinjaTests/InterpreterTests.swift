import Testing

@testable import Jinja

@Suite struct InterpreterTests {
  private func render(_ source: String, _ context: [String: JinjaValue] = [:]) throws -> String {
    try JinjaTemplate(source, name: "t").render(context)
  }

  private func error(_ source: String, _ context: [String: JinjaValue] = [:]) -> JinjaError? {
    do {
      _ = try render(source, context)
      return nil
    } catch let error as JinjaError {
      return error
    } catch {
      return nil
    }
  }

  @Test func parseOnceRenderMany() throws {
    let template = try JinjaTemplate("{% for m in messages %}{{ m }};{% endfor %}", name: "t")
    #expect(try template.render(["messages": ["a", "b"]]) == "a;b;")
    #expect(try template.render(["messages": [1]]) == "1;")
    #expect(try template.render([:]) == "")
  }

  @Test func syntaxErrorsNameLineAndColumn() throws {
    let e = try #require(error("line one\n  {% if x %}\n  {{ x + }}\n{% endif %}"))
    #expect(e.kind == .syntax)
    #expect(e.line == 3)
    #expect(e.description.hasPrefix("template 't', line 3"))
    let unclosed = try #require(error("ok\n{% for x in y %}never closed"))
    #expect(unclosed.kind == .syntax)
    #expect(unclosed.message.contains("endfor"))
    let badChar = try #require(error("{{ a ? b }}"))
    #expect(badChar.line == 1 && badChar.column == 6)
  }

  @Test func unsupportedConstructsAreClearErrors() throws {
    let include = try #require(error("a\n\n  {% include 'other.jinja' %}"))
    #expect(include.kind == .unsupported)
    #expect(include.line == 3 && include.column == 3)
    #expect(include.message == "unsupported tag 'include'")
    let filter = try #require(error("x\n{{ 1 | no_such_filter }}"))
    #expect(filter.kind == .unsupported && filter.line == 2)
    let test = try #require(error("{{ 1 is no_such_test }}"))
    #expect(test.kind == .unsupported)
    let method = try #require(error("{{ 'x'.no_such_method() }}"))
    #expect(method.kind == .unsupported)
  }

  @Test func runtimeErrorsNameTheTag() throws {
    let e = try #require(error("a\nb {{ missing.attr }}"))
    #expect(e.kind == .undefined && e.line == 2 && e.column == 3)
    #expect(e.message.contains("'missing' is undefined"))
    let raised = try #require(error("{{ raise_exception('bad role: ' ~ r) }}", ["r": "tool"]))
    #expect(raised.kind == .raised && raised.message == "bad role: tool")
  }

  @Test func trimAndLstripBlocksAsHuggingFace() throws {
    // lstrip_blocks removes the indentation before a block tag, trim_blocks the newline after it.
    #expect(try render("<\n    {% if true %}\n    x\n    {% endif %}\n>") == "<\n    x\n>")
    // Output tags are not trimmed; `-` strips all whitespace on its side.
    #expect(try render("  {{ 1 }}\n  {{- 2 -}}  \n 3") == "  123")
    // `+` disables lstrip; a single trailing newline of the template is dropped.
    #expect(try render("  {%+ if true %}a{% endif %}\n") == "  a")
  }

  @Test func valuesPrintAsPython() throws {
    let context: [String: JinjaValue] = [
      "v": .object([("a", 1), ("b", [true, .none, 2.5, "it's"])]), "f": 1e16, "g": 0.1, "h": 100.0,
    ]
    #expect(try render("{{ v }}|{{ f }}|{{ g }}|{{ h }}|{{ undefined }}", context)
      == #"{'a': 1, 'b': [True, None, 2.5, "it's"]}|1e+16|0.1|100.0|"#)
  }

  @Test func tojsonKeepsKeyOrderAndUnicode() throws {
    let value: JinjaValue = .object([("z", "é\n"), ("a", [1, 2.0]), ("e", .object([]))])
    #expect(try render("{{ v | tojson }}", ["v": value]) == #"{"z": "é\n", "a": [1, 2.0], "e": {}}"#)
    #expect(try render("{{ v | tojson(indent=1) }}", ["v": ["x"]]) == "[\n \"x\"\n]")
  }

  @Test func namespaceSurvivesLoopScope() throws {
    let source = "{% set n = namespace(c=0) %}{% set plain = 0 %}{% for i in xs %}{% set n.c = n.c + i %}"
      + "{% set plain = plain + i %}{% endfor %}{{ n.c }} {{ plain }}"
    #expect(try render(source, ["xs": [1, 2, 3]]) == "6 0")
  }

  @Test func jsonParserKeepsOrderAndNumberKinds() throws {
    let value = try JinjaValue(json: #"{"b": 1, "a": [1.0, 2e3, -0, "\u00e9\ud83d\ude00"], "c": null, "d": true}"#)
    guard case .object(let object) = value else { Issue.record("not an object"); return }
    #expect(object.keys == ["b", "a", "c", "d"])
    #expect(object["a"] == [.double(1.0), .double(2000), .int(0), "é😀"])
    #expect(throws: JinjaError.self) { try JinjaValue(json: "{\"a\": }") }
    #expect(throws: JinjaError.self) { try JinjaValue(json: "[1, 2") }
  }

  @Test func pythonFloatRepr() {
    let cases: [(Double, String)] = [
      (1.0, "1.0"), (0.5, "0.5"), (1e-5, "1e-05"), (0.0001, "0.0001"), (1e16, "1e+16"),
      (1234567890123456.0, "1234567890123456.0"), (12345678901234567.0, "1.2345678901234568e+16"),
      (-2.5e-10, "-2.5e-10"), (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
      (100.0, "100.0"), (123.456, "123.456"), (-0.0, "-0.0"),
    ]
    for (value, expected) in cases { #expect(PythonFloat.repr(value) == expected, "\(value)") }
  }

  @Test func hostileTemplatesFailInsteadOfHanging() throws {
    let nested = String(repeating: "{% if true %}", count: 500) + String(repeating: "{% endif %}", count: 500)
    #expect(error(nested)?.kind == .syntax)
    let loops = try JinjaTemplate("{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}")
    #expect(throws: JinjaError.self) { try loops.render([:], maxLoopIterations: 5000) }
    #expect(try loops.render([:], maxLoopIterations: 10_100) == "")
    #expect(error("{{ 'x' * 100000000 }}")?.kind == .runtime)
    #expect(error("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}")?.kind == .runtime)
    #expect(error("{{ " + String(repeating: "(", count: 300) + "1" + String(repeating: ")", count: 300) + " }}")?.kind == .syntax)
    #expect(error("{{ 1" + String(repeating: " + 1", count: 900) + " }}")?.kind == .runtime)
  }
}
