import Common
import Foundation
import Testing
@testable import Rewards

/// Seeded random and mutated model outputs through every parser: no crash, no hang, every value
/// finite or nil.
@Suite struct FuzzTests {
  static let seeds = [
    "<think>x</think><answer>[10, 20, 30, 40]</answer>", "{0: [[1, 2, 3, 4], [5, 6, 7, 8]], '2': []}",
    #"{"bbox_2d": [1.5, -2, 3e2, 4]}"#, "\\boxed{\\frac{2\\sqrt{3}}{3}\\pi}", "Answer: (B) 答案：Ｃ",
    "```json\n{\"1\": [[0,0,1,1],]}\n```", "2^{10}+3(4)-50%", "[[[[[[[[1]]]]]]]]", "{{{{{{", "\\sqrt{\\sqrt{\\sqrt{",
    "[1e308, 1e308, -1e308, 9e999]", "nan inf -inf NaN Infinity", "<answer>x = 140°</answer>",
  ]
  static let alphabet = Array("[]{}()<>,.:;'\"\\/-+*^%=√π°0123456789eEabxyAB \n\t_answerthinkfracsqrt")

  static func mutate(_ text: String, using rng: inout SeededGenerator) -> String {
    var characters = Array(text)
    for _ in 0..<Int.random(in: 1...4, using: &rng) {
      let position = characters.isEmpty ? 0 : Int.random(in: 0..<characters.count, using: &rng)
      switch Int.random(in: 0..<4, using: &rng) {
      case 0 where !characters.isEmpty: characters.remove(at: position)
      case 1: characters.insert(alphabet.randomElement(using: &rng) ?? "x", at: position)
      case 2 where !characters.isEmpty: characters[position] = alphabet.randomElement(using: &rng) ?? "x"
      default:
        let chunk = seeds.randomElement(using: &rng) ?? ""
        characters.insert(contentsOf: chunk.prefix(Int.random(in: 0...chunk.count, using: &rng)), at: position)
      }
    }
    return String(characters)
  }

  static func randomText(using rng: inout SeededGenerator) -> String {
    if Int.random(in: 0..<10, using: &rng) == 0 {
      // Invalid UTF-8 decoded with replacement characters.
      let bytes = (0..<Int.random(in: 0..<40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
      return String(decoding: bytes, as: UTF8.self)
    }
    return String((0..<Int.random(in: 0..<30, using: &rng)).map { _ in alphabet.randomElement(using: &rng) ?? "x" })
  }

  @Test func parsersSurviveOneHundredThousandCases() {
    var rng = SeededGenerator(seed: 7)
    var parsed = 0
    for iteration in 0..<100_000 {
      let base = Self.seeds[iteration % Self.seeds.count]
      let text = iteration % 3 == 0 ? Self.randomText(using: &rng) : Self.mutate(base, using: &rng)
      _ = AnswerParsing.answer(in: text)
      if let box = AnswerParsing.firstBox(in: text) {
        #expect(box.x1.isFinite && box.y2.isFinite)
      }
      if iteration % 4 == 0, let value = LiteralParser.parseLenient(text) {
        parsed += 1
        _ = MultiBox.mapping(value, truthLabels: ["0"], strict: false)
      }
      if iteration % 4 == 1, let value = MathVerifier.evaluate(MathVerifier.normalize(text)) {
        #expect(value.value.isFinite)
      }
      if iteration % 4 == 2 { _ = ChoiceParsing.choiceIndex(in: text, choices: ["a", "b"]) }
    }
    #expect(parsed > 100)
  }

  @Test func rewardsStayFiniteOnMutatedOutputs() async throws {
    var rng = SeededGenerator(seed: 11)
    let names = ["format", "gaussian_point", "gaussian_plane", "multi_box_format_reward", "multi_gaussian_point",
                 "multi_gaussian_plane", "think_format", "rec_format", "iou", "rec_accuracy", "accuracy",
                 "counting_accuracy", "mc_idx", "think_tag_format"]
    // One shared block: each function gets `box_frame` only if it reads it.
    let functions = try RewardRegistry.make(names, shared: ["box_frame": .string("resized")])
    let fields: [String: JSONValue] = [
      "bbox": boxJSON([0, 0, 0, 10]), "abs_box": .object(["0": .array([boxJSON([1, 1, 5, 5])]), "1": .array([])]),
      "solution": .string("<answer>2\\sqrt{3}</answer>"), "label_idx": .int(1), "ground_truth": .int(3),
    ]
    let image = ImageGeometry(originalWidth: 640, originalHeight: 480, resizedWidth: 0, resizedHeight: 0)
    let batch = (0..<2_000).map { index in
      RewardSample(completion: Self.mutate(Self.seeds[index % Self.seeds.count], using: &rng), images: [image], fields: fields)
    }
    for function in functions {
      let values = try await function.score(batch)
      #expect(values.count == batch.count)
      #expect(values.allSatisfy { $0.map { $0.isFinite && $0 >= -1 && $0 <= 1 } ?? true }, "\(function.name)")
    }
  }
}

/// Seeded adversarial completions through every registered reward (the external ones against a
/// loopback server and a shell program): no crash, every value finite or nil, in-process values
/// within -1...1. Speed is not asserted; the slowest input per reward is recorded and printed
/// (thread CPU time for in-process rewards, wall time per batch of 64 for external ones).
/// `VLMRL_FUZZ_COUNT` sets the number of completions (default 3,000; `tools/fuzz_rewards.sh` runs
/// 100,000) and `VLMRL_FUZZ_REPORT` a file the summary is written to.
@Suite(.serialized) struct RegistryFuzzTests {
  static var count: Int { Int(ProcessInfo.processInfo.environment["VLMRL_FUZZ_COUNT"] ?? "") ?? 3_000 }

  static let scripts: [[Unicode.Scalar]] = [
    Array(0x20...0x7E), Array(0x0600...0x06FF), Array(0x0900...0x097F), Array(0x4E00...0x4E80),
    Array(0xFF01...0xFF5E), Array(0x1F600...0x1F64F), Array(0x0300...0x036F), Array(0x2200...0x22FF),
    [0x2212, 0x2013, 0xFE63, 0x00A0, 0x3000, 0x202E, 0x200B, 0xFEFF, 0x1D7CE, 0x0660, 0x0966],
  ].map { $0.compactMap(Unicode.Scalar.init) }

  /// One adversarial completion; `kind` picks the family.
  static func adversarial(kind: Int, using rng: inout SeededGenerator) -> String {
    func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &rng)] }
    func number() -> String {
      pick(["1e308", "-1e308", "1e999", "-1e-400", "nan", "NaN", "inf", "-inf", "Infinity", "0x1F", "1_000",
            String(repeating: "9", count: Int.random(in: 1...400, using: &rng)), "\(Int.random(in: -5000...5000, using: &rng))",
            "\(Double.random(in: -1e6...1e6, using: &rng))", "−12", "１２", "٣", "00012", ".5", "5.", "+-3"])
    }
    switch kind {
    case 0:  // random Unicode from several scripts
      let script = pick(scripts)
      return String(String.UnicodeScalarView((0..<Int.random(in: 0...200, using: &rng)).map { _ in pick(script) }))
    case 1:  // huge and odd numbers in box-like lists
      let numbers = (0..<Int.random(in: 0...6, using: &rng)).map { _ in number() }.joined(separator: pick([", ", ",", " ", "，"]))
      return pick(["[\(numbers)]", "<answer>[\(numbers)]</answer>", "{\"bbox_2d\": [\(numbers)]}", "{0: [[\(numbers)]]}", numbers])
    case 2:  // deep nesting
      let depth = Int.random(in: 1...(Int.random(in: 0..<10, using: &rng) == 0 ? 20_000 : 3_000), using: &rng)
      let open = pick(["[", "{", "(", "\\sqrt{", "{0: [", "\\frac{1}{", "-", "2^"])
      let close = pick(["]", "}", ")", "", "]]"])
      return String(repeating: open, count: depth) + number() + String(repeating: close, count: Int.random(in: 0...depth, using: &rng))
    case 3:  // a 100 KB string
      let unit = pick(FuzzTests.seeds + ["y", "yes ", "a black cat ", "√", "[0, 0, 1, 1], ", "<think>", " "])
      return String(repeating: unit, count: max(1, 100_000 / max(1, unit.utf8.count)))
    case 4:
      return pick(["", "<answer>", "\\boxed{"]) + String(repeating: "√", count: 20_000) + pick(["", "4", "}", "</answer>"])
    case 5:  // non-finite literals in JSON, Python literals and math
      let word = pick(["NaN", "nan", "Infinity", "-Infinity", "inf", "1e999", "None", "null", "True"])
      return pick(["[\(word), 0, 1, 1]", "{0: [[0, 0, \(word), 1]]}", "<answer>\(word)</answer>", "\\frac{1}{0}", "0/0",
                   "{\"size\": [\(word), 4], \"counts\": [16]}", "\(word)%", "√-1"])
    case 6:  // malformed boxes and JSON
      return FuzzTests.mutate(pick(FuzzTests.seeds + [
        "{0: [[1, 2, 3, 4]], 'x': [(5, 6, 7, 8)],}", #"{"0": [[1,2,3,4]]"#, "[[1,2,3,4],[5,6,7,8]", "{0: {1: [2]}}",
        "```json\n[[1, 2, 3, 4]]\n```", "[1, 2, 3, 4][5, 6, 7, 8]", "{[1,2,3,4]: 0}",
      ]), using: &rng)
    case 7:  // RLE and polygon garbage
      let size = "[\(Int.random(in: -2...4000, using: &rng)), \(Int.random(in: -2...4000, using: &rng))]"
      let counts = pick([
        "\"" + String((0..<Int.random(in: 0...300, using: &rng)).map { _ in Character(Unicode.Scalar(UInt8.random(in: 32...126, using: &rng))) }) + "\"",
        "[" + (0..<Int.random(in: 0...50, using: &rng)).map { _ in String(Int.random(in: -100...100_000, using: &rng)) }.joined(separator: ", ") + "]",
        "\"0PP\"", "[]", "null",
      ])
      let polygon = (0..<Int.random(in: 0...40, using: &rng)).map { _ in number() }.joined(separator: ", ")
      return pick(["{\"size\": \(size), \"counts\": \(counts)}", "[{\"size\": \(size), \"counts\": \(counts)}]", "[\(polygon)]",
                   "[[\(polygon)], [\(polygon)]]", "<answer>{\"size\": \(size), \"counts\": \(counts)}</answer>"])
    case 8:  // tag soup and choice-like text
      let parts = ["<think>", "</think>", "<answer>", "</answer>", "Answer: ", "答案：", "(B)", "Ｃ", " I ", "Because ", "\n", "x"]
      return (0..<Int.random(in: 0...60, using: &rng)).map { _ in pick(parts) }.joined()
    default:
      return FuzzTests.mutate(pick(FuzzTests.seeds), using: &rng)
    }
  }

  static func completions(count: Int, seed: UInt64) -> [String] {
    var rng = SeededGenerator(seed: seed)
    return (0..<count).map { index in
      // The costly families are rarer: 100 KB strings 0.3%, deep nesting 2%, 20,000 radicals 0.8%.
      let roll = Int.random(in: 0..<1000, using: &rng)
      let kind = roll < 3 ? 3 : (roll < 23 ? 2 : (roll < 31 ? 4 : [0, 1, 5, 6, 7, 8, 9][roll % 7]))
      return adversarial(kind: kind, using: &rng)
    }
  }

  /// Plausible record fields for every reward, varied per sample.
  static func sample(_ completion: String, index: Int) -> RewardSample {
    let truthMask = RLEMask(height: 8, width: 8, pixels: (0..<64).map { $0 % 3 == 0 })
    var fields: [String: JSONValue] = [
      "bbox": boxJSON([Double(index % 7), 0, 10, Double(index % 13)]),
      "abs_box": index % 2 == 0
        ? .object(["0": .array([boxJSON([1, 1, 5, 5])]), "1": .array([])])
        : .string("{0: [[1, 1, 5, 5], (2, 2, 9, 9)]}"),
      "solution": .string(["<answer>2\\sqrt{3}</answer>", "[1, 2, 3, 4]", "3", "a black cat", "−1/2"][index % 5]),
      "ground_truth": .int(index % 4), "label_idx": index % 3 == 0 ? .string("１") : .int(index % 4),
      "choices": .array(["red", "blue", "green", "A. cat"].map(JSONValue.string)),
      "mask_rle": index % 4 == 0 ? .array([.int(1), .int(2), .int(3), .int(4), .int(5), .int(6)]) : truthMask.json,
      "captions": .array([.string("a black cat on a mat"), .string("yyyy y")]),
    ]
    if index % 25 == 0 { fields["judge_questions"] = HTTPHardeningTests.question }
    let images = [ImageGeometry(
      originalWidth: [640, 0, 8, 1 << 15][index % 4], originalHeight: [480, 0, 8, 3][index % 4],
      resizedWidth: [0, 320, 8, 1][index % 4], resizedHeight: [0, 240, 8, 1][index % 4])]
    let attention = index % 5 == 0 ? nil : AttentionDiagnostics(
      textMass: [0.5, 0, .nan, 1e300][index % 4], visionMass: [0.5, 0, 1, .infinity][index % 4],
      textTokens: [10, 0, 1, Int.max][index % 4], visionTokens: [10, 5, 0, 1][index % 4])
    return RewardSample(prompt: "p", completion: completion, images: images, fields: fields, attention: attention)
  }

  struct Slowest {
    var seconds = 0.0
    var input = ""
  }

  @Test func everyRegisteredRewardSurvivesAdversarialCompletions() async throws {
    let total = Self.count
    let judge = try await TestHTTPServer { body, _ in
      let prompt = (try? JSONValue.parse(body))?["messages"]?.arrayValue?.first?["content"]?.stringValue ?? ""
      return .init(body: ExternalTests.chatReply(prompt.count % 2 == 0 ? "A" : "Answer: (B)"))
    }
    let scorer = try await TestHTTPServer { body, _ in
      let samples = (try? JSONValue.parse(body))?["samples"]?.arrayValue ?? []
      return .init(body: JSONValue.array(samples.map { .double(Double(($0["completion"]?.stringValue?.utf8.count ?? 0) % 7) / 7) }).jsonString)
    }
    defer { Task { await judge.shutdown(); await scorer.shutdown() } }
    let canonical = Set(RewardRegistry.names.map(RewardRegistry.canonicalName)).sorted()
    let parameters: [String: [String: JSONValue]] = [
      "command": ["command": .string("while IFS= read -r line; do echo 0.5; done"), "timeout": .int(60)],
      "http": ["url": .string(scorer.baseURL), "timeout": .int(60)],
      "llm_judge": ["url": .string(judge.baseURL), "max_concurrency": .int(16)],
      "caption": ["url": .string(judge.baseURL), "wordnet": .bool(false), "judge_fallback": .string("meteor")],
      "meteor": ["wordnet": .bool(false)],
      "mdi": ["mdi_balance_ratio": .double(2)],
    ]
    let external: Set = ["command", "http", "llm_judge", "caption"]
    let texts = Self.completions(count: total, seed: 2026)
    let samples = texts.enumerated().map { Self.sample($1, index: $0) }
    let functions = try canonical.map { try RewardRegistry.make($0, parameters: parameters[$0] ?? [:]) }
    // Every reward in a task of its own (they are independent); each records its slowest input.
    let results = try await withThrowingTaskGroup(of: (String, Int, Slowest).self) { group in
      for function in functions {
        group.addTask {
          try await Self.run(function, samples: samples, external: external.contains(function.name))
        }
      }
      var collected: [(String, Int, Slowest)] = []
      for try await result in group { collected.append(result) }
      return collected
    }
    var slowest: [String: Slowest] = [:]
    var checked = 0
    for (name, count, entry) in results {
      slowest[name] = entry
      checked += count
    }
    #expect(checked == total * canonical.count)
    let overall = slowest.filter { !external.contains($0.key) }.max { $0.value.seconds < $1.value.seconds }
    var report = "reward fuzz: \(total) completions x \(canonical.count) rewards = \(checked) scores, 0 crashes\n"
    for (name, entry) in slowest.sorted(by: { $0.value.seconds > $1.value.seconds }) {
      let unit = ["command", "http", "llm_judge", "caption"].contains(name) ? "s wall, batch of 64" : "s CPU"
      report += String(format: "  %-24@ slowest %.4f %@  %@\n", name as NSString, entry.seconds, unit as NSString, entry.input as NSString)
    }
    if let overall {
      report += "slowest in-process input: \(overall.key) \(String(format: "%.4f", overall.value.seconds)) s CPU on \(overall.value.input)\n"
    }
    print(report, terminator: "")
    if let path = ProcessInfo.processInfo.environment["VLMRL_FUZZ_REPORT"] {
      try report.write(toFile: path, atomically: true, encoding: .utf8)
    }
  }

  /// Scores every sample with `function`, checking each value; returns the number of values and
  /// the slowest input. In-process rewards go one sample at a time (so the slowest input is
  /// known), external ones in batches of 64 as the trainer sends them.
  static func run(_ function: any RewardFunction, samples: [RewardSample], external: Bool) async throws -> (String, Int, Slowest) {
    let name = function.name
    let batchSize = external ? 64 : 1
    var slowest = Slowest()
    var checked = 0
    for start in stride(from: 0, to: samples.count, by: batchSize) {
      let batch = Array(samples[start..<min(samples.count, start + batchSize)])
      // In-process rewards run synchronously on one thread: its CPU time is the cost of the input,
      // free of the noise of other processes. External ones wait on I/O: wall time.
      let clock = ContinuousClock.now
      let cpuStart = threadCPUSeconds()
      let values = try await function.score(batch)
      let elapsed = ContinuousClock.now - clock
      let seconds = external
        ? Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        : threadCPUSeconds() - cpuStart
      #expect(values.count == batch.count, "\(name)")
      for (offset, value) in values.enumerated() {
        guard let value else { continue }
        #expect(value.isFinite, "\(name): \(batch[offset].completion.prefix(80))")
        if !external {
          #expect(value >= -1 && value <= 1, "\(name): \(value) for \(batch[offset].completion.prefix(80))")
        }
      }
      checked += values.count
      if seconds > slowest.seconds {
        slowest = Slowest(seconds: seconds, input: describe(batch.count == 1 ? batch[0].completion : "batch from #\(start)"))
      }
      // Scoring is synchronous work on the shared pool: let other tests' tasks run.
      await Task.yield()
    }
    return (name, checked, slowest)
  }

  /// CPU time of the calling thread.
  static func threadCPUSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) * 1e-9
  }

  /// A short description of an input: its size and its start.
  static func describe(_ text: String) -> String {
    let head = text.prefix(40).map { $0.isNewline ? "⏎" : String($0) }.joined()
    return "\(text.utf8.count) bytes: \(head)\(text.count > 40 ? "…" : "")"
  }
}
