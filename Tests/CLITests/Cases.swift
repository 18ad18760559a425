import Foundation
import Imaging

/// One generated bad input: files written into a fresh folder, the `vlmrl` arguments to run there,
/// and what a clear answer must name.
struct BadInputCase: Sendable {
  enum Expect: Sendable {
    /// Must fail with exit 1, 2 or 64 naming the culprits; exit 0 is a silent result.
    case error
    /// Exit 0 is fine (the bad part is skipped and reported, naming the culprits) or a clear error.
    case either
  }

  var category: String
  var name: String
  var expect: Expect
  /// Strings stderr must contain when the run fails (the file, record or field at fault).
  var culprits: [String]
  /// Strings the output must contain when the run succeeds (the skipped record named); nil: none.
  var reported: [String]? = nil
  /// Writes the input files into the folder and returns the arguments.
  var setup: @Sendable (_ folder: URL, _ base: Fixtures) throws -> [String]
  /// Files whose bytes must be unchanged after the run (the data-loss paths).
  var preserved: [String] = []
}

/// What every case may copy: a tiny model folder made once with `vlmrl model init`, a good image.
struct Fixtures: Sendable {
  var model: URL
  var tokenizer: URL
}

/// A config value to write, Sendable (JSONSerialization takes `Any`).
enum ConfigValue: Sendable, CustomStringConvertible {
  case int(Int), double(Double), string(String), ints([Int])

  var any: Any {
    switch self {
    case .int(let value): return value
    case .double(let value): return value
    case .string(let value): return value
    case .ints(let value): return value
    }
  }

  var description: String { "\(any)" }
}

enum Catalog {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  // MARK: Helpers for setups

  static func write(_ data: Data, _ folder: URL, _ name: String) throws {
    let url = folder.appendingPathComponent(name)
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try data.write(to: url)
  }

  static func write(_ text: String, _ folder: URL, _ name: String) throws { try write(Data(text.utf8), folder, name) }

  static func image(_ side: Int = 56) -> RGBImage {
    var pixels: [UInt8] = []
    for y in 0..<side { for x in 0..<side { pixels += [UInt8(x * 4 % 256), UInt8(y * 4 % 256), 90] } }
    return RGBImage(width: side, height: side, pixels: pixels)
  }

  static func png(_ side: Int = 56) throws -> Data { try encodePNG(image(side)) }
  static func jpeg(_ side: Int = 56) throws -> Data { try encodeJPEG(image(side), quality: 90) }

  /// A copy of the tiny model under `folder/model`.
  static func model(_ folder: URL, _ base: Fixtures) throws -> URL {
    let copy = folder.appendingPathComponent("model")
    try FileManager.default.copyItem(at: base.model, to: copy)
    return copy
  }

  /// Edits config.json of a model copy (top level, or `vision_config` when `vision` is set).
  static func editConfig(_ model: URL, vision: Bool = false, _ edit: (inout [String: Any]) -> Void) throws {
    let url = model.appendingPathComponent("config.json")
    var object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    if vision {
      var nested = object["vision_config"] as! [String: Any]
      edit(&nested)
      object["vision_config"] = nested
    } else {
      edit(&object)
    }
    try JSONSerialization.data(withJSONObject: object).write(to: url)
  }

  static func generate(_ model: String = "model", _ extra: [String] = []) -> [String] {
    ["generate", "--model", model, "--prompt", "hi", "--max-new-tokens", "2"] + extra
  }

  /// A grounding record for `image` with the given stated size.
  static func record(_ image: String, width: Int = 56, height: Int = 56, instruction: String = "find the shape") -> String {
    #"{"image_path": "\#(image)", "width": \#(width), "height": \#(height), "instruction": "\#(instruction)", "bbox": [1, 1, 10, 10]}"#
  }

  /// A Parquet file with one optional string column and no row groups (Thrift compact footer).
  static func zeroRowParquet() -> Data {
    var meta: [UInt8] = [0x15, 0x02, 0x19, 0x2C]
    meta += [0x48, 6] + Array("schema".utf8) + [0x15, 0x02, 0x00]
    meta += [0x15, 0x0C, 0x25, 0x02, 0x18, 4] + Array("text".utf8) + [0x25, 0x00, 0x00]
    meta += [0x16, 0x00, 0x19, 0x0C, 0x00]
    let n = UInt32(meta.count)
    return Data(Array("PAR1".utf8) + meta + [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)]
      + Array("PAR1".utf8))
  }

  /// Rewrites the data of the first float32 tensor of a safetensors file with `value`.
  static func poisonFirstTensor(_ url: URL, value: Float) throws -> String {
    var bytes = [UInt8](try Data(contentsOf: url))
    let length = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + length)])) as! [String: Any]
    for name in header.keys.sorted() where name != "__metadata__" {
      let info = header[name] as! [String: Any]
      guard info["dtype"] as? String == "F32", let offsets = info["data_offsets"] as? [Int], offsets[1] > offsets[0] else { continue }
      let pattern = withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
      for position in stride(from: 8 + length + offsets[0], to: 8 + length + offsets[1], by: 4) {
        bytes.replaceSubrange(position..<(position + 4), with: pattern)
      }
      try Data(bytes).write(to: url)
      return name
    }
    throw CocoaError(.fileReadCorruptFile)
  }

  // MARK: The cases

  /// The bounded set `make test` runs; `full` adds generated variants (scripts/bad-input).
  static func cases(full: Bool) -> [BadInputCase] {
    var all = modelCases + imageCases + datasetCases + outputCases + flagCases + configCases
    if full { all += generatedCases() }
    return all
  }

  static let modelCases: [BadInputCase] = {
    var cases: [BadInputCase] = []
    func configValue(_ field: String, _ value: ConfigValue, vision: Bool = false) -> BadInputCase {
      BadInputCase(category: "model config", name: "\(vision ? "vision_config." : "")\(field) = \(value)", expect: .error,
                   culprits: ["config.json", field]) { folder, base in
        try editConfig(try model(folder, base), vision: vision) { $0[field] = value.any }
        return generate()
      }
    }
    cases += [
      configValue("hidden_act", .string("relu6")), configValue("num_hidden_layers", .int(-1)),
      configValue("num_hidden_layers", .int(1_000_000_000)), configValue("num_attention_heads", .int(0)),
      configValue("hidden_size", .int(33)), configValue("rms_norm_eps", .double(-1e-6)), configValue("rope_theta", .int(0)),
      configValue("vocab_size", .int(0)), configValue("image_token_id", .int(10_000_000)),
      configValue("depth", .int(0), vision: true), configValue("hidden_act", .string("mish"), vision: true),
    ]
    cases.append(BadInputCase(category: "model config", name: "config.json truncated", expect: .error,
                              culprits: ["config.json", "line"]) { folder, base in
      let url = try model(folder, base).appendingPathComponent("config.json")
      let data = try Data(contentsOf: url)
      try data.prefix(data.count / 2).write(to: url)
      return generate()
    })
    cases.append(BadInputCase(category: "model config", name: "config.json missing", expect: .error,
                              culprits: ["config.json"]) { folder, base in
      try FileManager.default.removeItem(at: try model(folder, base).appendingPathComponent("config.json"))
      return generate()
    })
    cases.append(BadInputCase(category: "model config", name: "preprocessor max_pixels 0", expect: .error,
                              culprits: ["preprocessor_config.json", "max_pixels"]) { folder, base in
      let url = try model(folder, base).appendingPathComponent("preprocessor_config.json")
      var object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
      object["max_pixels"] = 0
      try JSONSerialization.data(withJSONObject: object).write(to: url)
      return generate()
    })
    cases.append(BadInputCase(category: "model weights", name: "safetensors header length past the end", expect: .error,
                              culprits: ["model.safetensors"]) { folder, base in
      let url = try model(folder, base).appendingPathComponent("model.safetensors")
      var bytes = [UInt8](try Data(contentsOf: url))
      bytes.replaceSubrange(0..<8, with: [0xFF, 0xFF, 0xFF, 0x7F, 0, 0, 0, 0])
      try Data(bytes).write(to: url)
      return generate()
    })
    cases.append(BadInputCase(category: "model weights", name: "safetensors truncated", expect: .error,
                              culprits: ["model.safetensors"]) { folder, base in
      let url = try model(folder, base).appendingPathComponent("model.safetensors")
      let data = try Data(contentsOf: url)
      try data.prefix(data.count * 2 / 3).write(to: url)
      return generate()
    })
    cases.append(BadInputCase(category: "model weights", name: "safetensors empty", expect: .error,
                              culprits: ["model.safetensors"]) { folder, base in
      try Data().write(to: try model(folder, base).appendingPathComponent("model.safetensors"))
      return generate()
    })
    cases.append(BadInputCase(category: "model weights", name: "NaN weights", expect: .error,
                              culprits: ["non-finite"]) { folder, base in
      _ = try poisonFirstTensor(try model(folder, base).appendingPathComponent("model.safetensors"), value: .nan)
      return generate()
    })
    cases.append(BadInputCase(category: "tokenizer", name: "tokenizer.json truncated", expect: .error,
                              culprits: ["tokenizer.json"]) { folder, base in
      let url = try model(folder, base).appendingPathComponent("tokenizer.json")
      let data = try Data(contentsOf: url)
      try data.prefix(data.count / 3).write(to: url)
      return generate()
    })
    cases.append(BadInputCase(category: "tokenizer", name: "tokenizer.json missing", expect: .error,
                              culprits: ["tokenizer.json"]) { folder, base in
      try FileManager.default.removeItem(at: try model(folder, base).appendingPathComponent("tokenizer.json"))
      return generate()
    })
    cases.append(BadInputCase(category: "device", name: "--device cuda where CUDA may be missing", expect: .either,
                              culprits: ["--device"]) { folder, base in
      _ = try model(folder, base)
      return generate("model", ["--device", "cuda"])
    })
    return cases
  }()

  static let imageCases: [BadInputCase] = {
    /// `data inspect` over one record per bad image: each is skipped and named.
    func inspected(_ name: String, file: String, _ bytes: @escaping @Sendable () throws -> Data) -> BadInputCase {
      BadInputCase(category: "image", name: name, expect: .either, culprits: [file], reported: [file]) { folder, _ in
        try write(try bytes(), folder, file)
        try write(try png(), folder, "good.png")
        try write(record("good.png") + "\n" + record(file) + "\n", folder, "data.jsonl")
        return ["data", "inspect", "data.jsonl"]
      }
    }
    var cases = [
      inspected("truncated JPEG", file: "cut.jpg") { try jpeg().prefix(300) },
      inspected("truncated PNG", file: "cut.png") { try png().prefix(40) },
      inspected("zero bytes", file: "empty.png") { Data() },
      inspected("text named .png", file: "text.png") { Data("hello".utf8) },
      inspected("GIF", file: "anim.gif") { Data("GIF89a".utf8) + Data(repeating: 0, count: 20) },
      inspected("huge declared dimensions", file: "huge.png") {
        var bytes = [UInt8](try png())
        bytes.replaceSubrange(16..<24, with: [0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0])  // 100000 x 100000
        return Data(bytes)
      },
      inspected("missing image", file: "nowhere.png") { Data() },
    ]
    cases[cases.count - 1].setup = { folder, _ in
      try write(record("nowhere.png") + "\n", folder, "data.jsonl")
      return ["data", "inspect", "data.jsonl"]
    }
    cases.append(BadInputCase(category: "image", name: "PNG named .jpg", expect: .either, culprits: []) { folder, _ in
      try write(try png(), folder, "really-png.jpg")
      try write(record("really-png.jpg") + "\n", folder, "data.jsonl")
      return ["data", "inspect", "data.jsonl"]
    })
    cases.append(BadInputCase(category: "image", name: "generate with a truncated JPEG", expect: .error,
                              culprits: ["cut.jpg"]) { folder, base in
      _ = try model(folder, base)
      try write(try jpeg().prefix(200), folder, "cut.jpg")
      return generate("model", ["--image", "cut.jpg"])
    })
    return cases
  }()

  static let datasetCases: [BadInputCase] = {
    func inspect(_ name: String, expect: BadInputCase.Expect, culprits: [String], file: String,
                 _ content: @escaping @Sendable () throws -> Data) -> BadInputCase {
      BadInputCase(category: "dataset", name: name, expect: expect, culprits: culprits, reported: culprits) { folder, _ in
        try write(try png(), folder, "good.png")
        try write(try content(), folder, file)
        return ["data", "inspect", file]
      }
    }
    return [
      inspect("bad JSONL line", expect: .either, culprits: ["data.jsonl #1", "line 2"], file: "data.jsonl") {
        Data((record("good.png") + "\n{\"image_path\": \"good.png\", \n").utf8)
      },
      inspect("JSON array syntax error", expect: .error, culprits: ["data.json", "line 2"], file: "data.json") {
        Data("[\n  {\"a\" 1}\n]\n".utf8)
      },
      inspect("junk Parquet", expect: .error, culprits: ["data.parquet"], file: "data.parquet") {
        Data("PAR1 this is not parquet at all PAR1".utf8)
      },
      inspect("Parquet footer cut", expect: .error, culprits: ["data.parquet"], file: "data.parquet") {
        zeroRowParquet().prefix(20)
      },
      inspect("zero-row Parquet", expect: .either, culprits: ["no records"], file: "data.parquet") { zeroRowParquet() },
      inspect("YAML duplicate key", expect: .error, culprits: ["data.yaml", "duplicate key 'json_path'", "line 3"],
              file: "data.yaml") {
        Data("datasets:\n  - json_path: a.jsonl\n    json_path: b.jsonl\n".utf8)
      },
      inspect("YAML syntax error", expect: .error, culprits: ["data.yaml"], file: "data.yaml") {
        Data("datasets:\n  - json_path: [unclosed\n".utf8)
      },
      inspect("YAML names a missing file", expect: .error, culprits: ["missing.jsonl"], file: "data.yaml") {
        Data("datasets:\n  - json_path: missing.jsonl\n".utf8)
      },
      inspect("vision token in text", expect: .either, culprits: ["<|image_pad|>", "data.jsonl #0"], file: "data.jsonl") {
        Data((record("good.png", instruction: "where <|image_pad|> is") + "\n").utf8)
      },
      inspect("empty image list", expect: .either, culprits: ["empty image list"], file: "data.jsonl") {
        Data(#"{"image_path": [], "width": 56, "height": 56, "instruction": "i", "bbox": [1, 1, 10, 10]}"#.utf8 + [0x0A])
      },
      inspect("stated size contradicts the image", expect: .either, culprits: ["states 300x200"], file: "data.jsonl") {
        Data((record("good.png", width: 300, height: 200) + "\n").utf8)
      },
      BadInputCase(category: "dataset", name: "missing data file", expect: .error, culprits: ["nothere.jsonl"]) { _, _ in
        ["data", "inspect", "nothere.jsonl"]
      },
      BadInputCase(category: "dataset", name: "folder without data", expect: .error, culprits: ["emptydir"]) { folder, _ in
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("emptydir"), withIntermediateDirectories: true)
        return ["data", "inspect", "emptydir"]
      },
    ]
  }()

  static let outputCases: [BadInputCase] = [
    BadInputCase(category: "output", name: "convert onto its input", expect: .error, culprits: ["is the input file"],
                 setup: { folder, _ in
                   try write(try png(), folder, "good.png")
                   try write(record("good.png") + "\n", folder, "data.jsonl")
                   return ["data", "convert", "data.jsonl", "./sub/../data.jsonl", "--overwrite"]
                 }, preserved: ["data.jsonl"]),
    BadInputCase(category: "output", name: "convert onto a link to its input", expect: .error, culprits: ["is the input file"],
                 setup: { folder, _ in
                   try write(try png(), folder, "good.png")
                   try write(record("good.png") + "\n", folder, "data.jsonl")
                   try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent("link.jsonl").path,
                                                              withDestinationPath: "data.jsonl")
                   return ["data", "convert", ".", "link.jsonl"]
                 }, preserved: ["data.jsonl"]),
    BadInputCase(category: "output", name: "convert onto an existing file", expect: .error, culprits: ["--overwrite"],
                 setup: { folder, _ in
                   try write(try png(), folder, "good.png")
                   try write(record("good.png") + "\n", folder, "data.jsonl")
                   try write("keep me\n", folder, "out.jsonl")
                   return ["data", "convert", "data.jsonl", "out.jsonl"]
                 }, preserved: ["out.jsonl", "data.jsonl"]),
    BadInputCase(category: "output", name: "prepare-aokvqa onto its input folder", expect: .error, culprits: ["holds the input file"],
                 setup: { folder, _ in
                   try write(#"[{"question": "q", "choices": ["a", "b"], "correct_choice_idx": 0, "image_id": 1}]"#, folder, "aok/val.json")
                   return ["data", "prepare-aokvqa", "--input", "aok", "--out", "aok", "--overwrite"]
                 }, preserved: ["aok/val.json"]),
    BadInputCase(category: "output", name: "synth into a non-empty folder", expect: .error, culprits: ["--overwrite", "keep"],
                 setup: { folder, _ in
                   try write("precious\n", folder, "keep/notes.txt")
                   return ["data", "synth", "--count", "2", "--image-size", "32", "--out", "keep"]
                 }, preserved: ["keep/notes.txt"]),
    BadInputCase(category: "output", name: "model init into a non-empty folder", expect: .error, culprits: ["--overwrite", "keep"],
                 setup: { folder, base in
                   try write("precious\n", folder, "keep/notes.txt")
                   return ["model", "init", "--out", "keep", "--tokenizer", base.tokenizer.path]
                 }, preserved: ["keep/notes.txt"]),
  ]

  static let flagCases: [BadInputCase] = {
    func flags(_ name: String, culprit: String, _ arguments: [String]) -> BadInputCase {
      BadInputCase(category: "flags", name: name, expect: .error, culprits: [culprit]) { _, base in
        arguments.map { $0 == "TOKENIZER" ? base.tokenizer.path : $0 }
      }
    }
    return [
      flags("model init --heads 0", culprit: "--heads", ["model", "init", "--out", "m", "--heads", "0", "--tokenizer", "TOKENIZER"]),
      flags("model init --layers=-5", culprit: "--layers", ["model", "init", "--out", "m", "--layers=-5", "--tokenizer", "TOKENIZER"]),
      flags("model init --hidden 100 --heads 3", culprit: "--hidden",
            ["model", "init", "--out", "m", "--hidden", "100", "--heads", "3", "--tokenizer", "TOKENIZER"]),
      flags("model init --hidden 1000000", culprit: "--hidden", ["model", "init", "--out", "m", "--hidden", "1000000", "--tokenizer", "TOKENIZER"]),
      flags("model init with a missing tokenizer", culprit: "nowhere", ["model", "init", "--out", "m", "--tokenizer", "nowhere"]),
      // Without --tokenizer, from a folder outside the checkout: the checkout's assets/tokenizer is
      // found from the executable's path.
      BadInputCase(category: "flags", name: "model init from any folder", expect: .either, culprits: ["--tokenizer"],
                   reported: ["wrote"]) { _, _ in
        ["model", "init", "--out", "m", "--hidden", "32", "--heads", "2", "--kv-heads", "1", "--layers", "1",
         "--vision-hidden", "32", "--vision-depth", "1"]
      },
      flags("synth --count=-1", culprit: "--count", ["data", "synth", "--count=-1", "--out", "s"]),
      flags("inspect --prompts=-2", culprit: "--prompts", ["data", "inspect", "--prompts=-2", "x.jsonl"]),
      flags("synth --image-size 100000", culprit: "--image-size", ["data", "synth", "--image-size", "100000", "--out", "s"]),
      flags("synth --task nope", culprit: "nope", ["data", "synth", "--task", "nope", "--out", "s"]),
    ]
  }()

  // MARK: Generated variants (scripts/bad-input)

  /// Truncations and byte flips of every model file and image format at several points, and every
  /// bad config value on both the text and the vision side.
  static func generatedCases() -> [BadInputCase] {
    var cases: [BadInputCase] = []
    for file in ["config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json", "tokenizer_config.json"] {
      for fraction in [0.0, 0.1, 0.5, 0.9, 0.999] {
        cases.append(BadInputCase(category: "model files", name: "\(file) cut at \(fraction)", expect: .either,
                                  culprits: [file]) { folder, base in
          let url = try model(folder, base).appendingPathComponent(file)
          let data = try Data(contentsOf: url)
          try data.prefix(Int(Double(data.count) * fraction)).write(to: url)
          return generate()
        })
      }
      for seed in 1...3 {
        cases.append(BadInputCase(category: "model files", name: "\(file) flipped bytes #\(seed)", expect: .either,
                                  culprits: []) { folder, base in
          let url = try model(folder, base).appendingPathComponent(file)
          var bytes = [UInt8](try Data(contentsOf: url))
          var state = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15
          for _ in 0..<8 where !bytes.isEmpty {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let position = Int(state >> 33) % min(bytes.count, 4096)
            bytes[position] ^= UInt8(truncatingIfNeeded: state >> 13) | 1
          }
          try Data(bytes).write(to: url)
          return generate()
        })
      }
    }
    let values: [(String, ConfigValue, Bool)] = [
      ("num_hidden_layers", .int(0), false), ("num_key_value_heads", .int(3), false), ("intermediate_size", .int(-1), false),
      ("max_position_embeddings", .int(0), false), ("head_dim", .int(7), false), ("rope_theta", .int(-1), false),
      ("attention_dropout", .int(2), false), ("eos_token_id", .int(-5), false), ("hidden_size", .string("wide"), false),
      ("num_heads", .int(0), true), ("patch_size", .int(0), true), ("spatial_merge_size", .int(0), true),
      ("window_size", .int(3), true), ("fullatt_block_indexes", .ints([99]), true), ("in_chans", .int(1), true),
      ("out_hidden_size", .int(7), true),
    ]
    for (field, value, vision) in values {
      cases.append(BadInputCase(category: "model config", name: "\(vision ? "vision_config." : "")\(field) = \(value)",
                                expect: .error, culprits: ["config.json", field]) { folder, base in
        try editConfig(try model(folder, base), vision: vision) { $0[field] = value.any }
        return generate()
      })
    }
    cases.append(BadInputCase(category: "model weights", name: "infinite weights", expect: .error, culprits: ["non-finite"]) { folder, base in
      _ = try poisonFirstTensor(try model(folder, base).appendingPathComponent("model.safetensors"), value: .infinity)
      return generate()
    })
    for format in ["png", "jpg"] {
      for fraction in [0.05, 0.3, 0.6, 0.95] {
        cases.append(BadInputCase(category: "image", name: "\(format) cut at \(fraction)", expect: .either,
                                  culprits: []) { folder, base in
          _ = try model(folder, base)
          let data = format == "png" ? try png() : try jpeg()
          try write(data.prefix(Int(Double(data.count) * fraction)), folder, "cut.\(format)")
          return generate("model", ["--image", "cut.\(format)"])
        })
      }
    }
    for (index, line) in ["{", "[]", "\"text\"", "{\"image_path\": 5}", "{\"bbox\": [1,2,3]}", "nul\u{0}l", "{\"a\": 1e999}"].enumerated() {
      cases.append(BadInputCase(category: "dataset", name: "JSONL record \(index)", expect: .either, culprits: ["data.jsonl"]) { folder, _ in
        try write(line + "\n", folder, "data.jsonl")
        return ["data", "inspect", "data.jsonl"]
      })
    }
    return cases
  }
}
