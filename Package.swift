// swift-tools-version: 6.0
// vlmrl: GRPO / SFT / evaluation for Qwen-VL models, in Swift over libtorch.
//
// Layers (docs/design.md): CTorch (C++ shim) <- Torch <- NN <- Models <- Generation <- Training <- vlmrl.
// Plain-Swift side modules (no Torch): SafeTensors, Tokenizers, Jinja, Imaging, Formats, Datasets,
// Rewards, ModelConfig, Hub (hub downloads; network code over AsyncHTTPClient).
//
// Environment:
//   LIBTORCH      libtorch folder (include/, lib/); default .deps/libtorch (made by `make deps`).
//   VLMRL_DIST=1  release build for other machines: no rpath into this checkout (see `make dist`).
//   VLMRL_ONLY    comma-separated target names: declare only those and what they depend on
//                 (e.g. VLMRL_ONLY=RewardsTests builds and tests the Rewards module alone).
import Foundation
import PackageDescription

let env = ProcessInfo.processInfo.environment
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path
let libtorch = env["LIBTORCH"] ?? "\(root)/.deps/libtorch"
let cudaDeps = "\(root)/.deps/cuda"
let dist = env["VLMRL_DIST"] == "1"

// MARK: - Torch linkage

let torchCxx: [CXXSetting] = [
  .unsafeFlags([
    "-I\(libtorch)/include", "-I\(libtorch)/include/torch/csrc/api/include",
    "-std=c++17", "-D_GLIBCXX_USE_CXX11_ABI=1", "-Wno-deprecated-declarations",
    "-O2",
  ])
]
var torchLink: [LinkerSetting] = [
  .unsafeFlags(["-L\(libtorch)/lib", "-L\(cudaDeps)/lib"]),
  .linkedLibrary("torch_cpu"), .linkedLibrary("c10"), .linkedLibrary("stdc++"),
  .linkedLibrary("dl"),
]
if !dist {
  // Binaries built here find libtorch and the CUDA runtime without LD_LIBRARY_PATH.
  // DT_RPATH (not RUNPATH): it also applies to libtorch_cpu.so's own needs (libcudart, libcupti).
  torchLink.append(.unsafeFlags([
    "-Xlinker", "--disable-new-dtags",
    "-Xlinker", "-rpath", "-Xlinker", "\(libtorch)/lib",
    "-Xlinker", "-rpath", "-Xlinker", "\(cudaDeps)/lib",
  ]))
}

// MARK: - Image codecs and compression libraries

/// The C libraries of the system targets. Normal builds link them dynamically; `make dist` links
/// them statically (`-Bstatic`), so the binary does not need them on the GPU machine.
func codecLink(_ libraries: [String]) -> [LinkerSetting] {
  if dist {
    return [.unsafeFlags(["-Xlinker", "-Bstatic"] + libraries.flatMap { ["-Xlinker", "-l\($0)"] } + ["-Xlinker", "-Bdynamic"])]
  }
  return libraries.map { .linkedLibrary($0) }
}

// MARK: - Targets

let swiftSettings: [SwiftSetting] = [.swiftLanguageMode(.v6)]
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let yams = Target.Dependency.product(name: "Yams", package: "Yams")
let asyncHTTP = Target.Dependency.product(name: "AsyncHTTPClient", package: "async-http-client")
let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioHTTP = Target.Dependency.product(name: "NIOHTTP1", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")

/// name -> (kind, local dependencies, external dependencies)
struct Spec {
  enum Kind { case system(pkg: [String]), cxx, library, executable, test }
  var name: String
  var kind: Kind
  var deps: [String] = []
  var external: [Target.Dependency] = []
  var cxx: [CXXSetting] = []
  var link: [LinkerSetting] = []
  var exclude: [String] = []
  /// Source folder when not Sources/<name> (the example package's module).
  var path: String? = nil
}

let specs: [Spec] = [
  // System libraries (Debian -dev packages, installed by scripts/bootstrap-deps).
  Spec(name: "CJPEG", kind: .system(pkg: ["libjpeg"])),
  Spec(name: "CPNG", kind: .system(pkg: ["libpng"])),
  Spec(name: "CWebP", kind: .system(pkg: ["libwebp"])),
  Spec(name: "CZstd", kind: .system(pkg: ["libzstd"])),
  Spec(name: "CSnappy", kind: .system(pkg: [])),
  Spec(name: "CZlib", kind: .system(pkg: ["zlib"])),

  // Engine.
  // gloo_decls: the few gloo names ProcessGroupGloo.hpp needs, which the wheel does not ship
  // (Sources/CTorch/distributed.cpp says why that is safe).
  Spec(name: "CTorch", kind: .cxx,
       cxx: torchCxx + [.headerSearchPath("gloo_decls"), .define("USE_C10D_GLOO")], link: torchLink),
  Spec(name: "Torch", kind: .library, deps: ["CTorch"]),
  Spec(name: "NN", kind: .library, deps: ["Torch", "SafeTensors"]),

  // Plain-Swift side modules.
  Spec(name: "Common", kind: .library),
  Spec(name: "SafeTensors", kind: .library),
  Spec(name: "Jinja", kind: .library),
  Spec(name: "Tokenizers", kind: .library),
  Spec(name: "Imaging", kind: .library, deps: ["CJPEG", "CPNG", "CWebP", "CZlib"],
       link: codecLink(["jpeg", "png16", "webp", "z"]) + [.linkedLibrary("m")]),
  Spec(name: "ModelConfig", kind: .library, deps: ["Common"]),
  Spec(name: "Formats", kind: .library, deps: ["CZstd", "CSnappy", "CZlib"], link: codecLink(["zstd", "snappy", "z"])),
  Spec(name: "Datasets", kind: .library, deps: ["Common", "Formats", "Imaging"], external: [yams]),
  Spec(name: "Rewards", kind: .library, deps: ["Common"], external: [asyncHTTP, nioCore]),
  // Hugging Face hub downloads into the standard cache layout (models and dataset splits).
  Spec(name: "Hub", kind: .library, deps: ["ModelConfig"], external: [asyncHTTP, nioCore, nioHTTP, crypto]),

  // Models and above.
  Spec(name: "Processor", kind: .library, deps: ["Torch", "Imaging", "ModelConfig"]),
  Spec(name: "Models", kind: .library, deps: ["Torch", "NN", "SafeTensors", "ModelConfig"]),
  // The prompt layer: a record's messages -> rendered prompt, processed images, token ids, stop
  // tokens; and the rollout record every consumer of a completion reads.
  Spec(name: "Prompting", kind: .library,
       deps: ["Common", "Datasets", "Imaging", "Jinja", "ModelConfig", "Processor", "Rewards", "Tokenizers", "Torch"]),
  Spec(name: "Generation", kind: .library, deps: ["Torch", "Models", "Prompting", "Rewards"]),
  Spec(name: "Training", kind: .library,
       deps: ["Common", "Torch", "NN", "Models", "Generation", "Prompting", "Rewards", "Datasets", "ModelConfig",
              "Jinja", "SafeTensors", "Imaging"], external: [yams]),
  Spec(name: "Evaluation", kind: .library,
       deps: ["Common", "Torch", "Models", "Generation", "Prompting", "Rewards", "Datasets", "ModelConfig"]),
  // The OpenAI-compatible HTTP server over the rollout engine (`vlmrl serve`).
  Spec(name: "Serving", kind: .library,
       deps: ["Common", "Datasets", "Generation", "Jinja", "Models", "Prompting"],
       external: [nioCore, nioHTTP, nioPosix]),
  // The library product for other packages: one module that re-exports the layers (docs/library.md).
  Spec(name: "VLMRLKit", kind: .library,
       deps: ["Common", "Datasets", "Evaluation", "Generation", "ModelConfig", "Models", "Prompting", "Rewards", "Torch",
              "Training"]),
  // The example package's reward (docs/examples/swift-reward), compiled here too so that the suite
  // checks it against the library as it is.
  Spec(name: "ExampleReward", kind: .library, deps: ["VLMRLKit"], path: "docs/examples/swift-reward/Sources/ExampleReward"),
  Spec(name: "vlmrl", kind: .executable,
       deps: ["Common", "Torch", "NN", "Models", "Generation", "Prompting", "Training", "Evaluation", "Serving", "Processor", "Jinja", "SafeTensors", "Tokenizers", "ModelConfig",
              "Datasets", "Rewards", "Hub", "Imaging"],
       external: [argumentParser]),

  // Tests.
  Spec(name: "CommonTests", kind: .test, deps: ["Common"]),
  Spec(name: "TorchTests", kind: .test, deps: ["Torch"]),
  Spec(name: "NNTests", kind: .test, deps: ["NN", "Torch"]),
  Spec(name: "SafeTensorsTests", kind: .test, deps: ["SafeTensors"]),
  Spec(name: "JinjaTests", kind: .test, deps: ["Jinja"]),
  Spec(name: "TokenizersTests", kind: .test, deps: ["Tokenizers"]),
  Spec(name: "ImagingTests", kind: .test, deps: ["Imaging"]),
  Spec(name: "ModelConfigTests", kind: .test, deps: ["ModelConfig", "Common"]),
  Spec(name: "FormatsTests", kind: .test, deps: ["Formats"]),
  Spec(name: "DatasetsTests", kind: .test, deps: ["Datasets", "Common", "Imaging"]),
  Spec(name: "ProcessorTests", kind: .test, deps: ["Processor", "Torch", "Imaging", "ModelConfig"]),
  Spec(name: "ModelsTests", kind: .test, deps: ["Models", "Torch", "NN", "SafeTensors", "ModelConfig"]),
  Spec(name: "GenerationTests", kind: .test, deps: ["Generation", "Models", "Torch", "ModelConfig"]),
  Spec(name: "TrainingTests", kind: .test,
       deps: ["SafeTensors", "Training", "Evaluation", "Generation", "Prompting", "Common", "Torch", "NN", "Rewards", "Models", "Datasets", "ModelConfig",
              "Imaging", "Jinja", "Processor", "ExampleReward"]),
  Spec(name: "PromptingTests", kind: .test, deps: ["Prompting", "Jinja", "Datasets", "Rewards", "Common"]),
  Spec(name: "EvaluationTests", kind: .test,
       deps: ["NN", "Evaluation", "Prompting", "Common", "Torch", "Models", "Rewards", "Datasets", "ModelConfig"]),
  Spec(name: "CLITests", kind: .test, deps: ["Imaging"]),
  Spec(name: "RewardsTests", kind: .test, deps: ["Rewards", "Common"], external: [nioCore, nioHTTP, nioPosix]),
  Spec(name: "HubTests", kind: .test, deps: ["Hub", "ModelConfig", "Datasets", "SafeTensors"],
       external: [crypto, nioCore, nioHTTP, nioPosix]),
  Spec(name: "ServingTests", kind: .test,
       deps: ["Serving", "Generation", "Prompting", "Models", "ModelConfig", "Rewards", "Common", "Datasets"],
       external: [asyncHTTP, nioCore]),
]

// VLMRL_ONLY: keep the named targets and their local dependency closure.
let byName = Dictionary(uniqueKeysWithValues: specs.map { ($0.name, $0) })
var wanted = Set(specs.map(\.name))
if let only = env["VLMRL_ONLY"], !only.isEmpty {
  wanted = []
  var stack = only.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
  while let name = stack.popLast() {
    guard let spec = byName[name] else { fatalError("VLMRL_ONLY: unknown target \(name)") }
    if wanted.insert(name).inserted { stack.append(contentsOf: spec.deps) }
  }
}

func makeTarget(_ s: Spec) -> Target {
  let deps = s.deps.map { Target.Dependency(stringLiteral: $0) } + s.external
  switch s.kind {
  case .system(let pkg):
    // pkg-config would add its own dynamic -l flags; dist builds link the archives instead.
    return .systemLibrary(name: s.name, pkgConfig: dist ? nil : pkg.first)
  case .cxx:
    return .target(name: s.name, cxxSettings: s.cxx, linkerSettings: s.link)
  case .library:
    return .target(name: s.name, dependencies: deps, path: s.path, exclude: s.exclude, swiftSettings: swiftSettings,
                   linkerSettings: s.link)
  case .executable:
    return .executableTarget(name: s.name, dependencies: deps, exclude: s.exclude,
                             swiftSettings: swiftSettings, linkerSettings: s.link)
  case .test:
    return .testTarget(name: s.name, dependencies: deps, exclude: ["Fixtures"].filter {
      FileManager.default.fileExists(atPath: "\(root)/Tests/\(s.name)/\($0)")
    }, swiftSettings: swiftSettings)
  }
}

let targets = specs.filter { wanted.contains($0.name) }.map(makeTarget)
var products: [Product] = []
if wanted.contains("vlmrl") { products.append(.executable(name: "vlmrl", targets: ["vlmrl"])) }
if wanted.contains("VLMRLKit") { products.append(.library(name: "VLMRLKit", targets: ["VLMRLKit"])) }

let package = Package(
  name: "vlmrl",
  platforms: [.macOS(.v14)],
  products: products,
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    .package(url: "https://github.com/swift-server/async-http-client", from: "1.20.0"),
    .package(url: "https://github.com/apple/swift-nio", from: "2.60.0"),
    .package(url: "https://github.com/apple/swift-crypto.git", from: "3.0.0"),
  ],
  targets: targets,
  cxxLanguageStandard: .cxx17
)
