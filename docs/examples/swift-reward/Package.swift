// swift-tools-version: 6.0
// An example package that uses vlmrl as a library: a reward written in Swift, trained with
// vlmrl's GRPOTrainer (docs/library.md). Build it after `make deps` in the vlmrl checkout (the
// library links the libtorch that `make deps` fetched there).
import PackageDescription

let package = Package(
  name: "swift-reward",
  platforms: [.macOS(.v14)],
  dependencies: [
    // A checkout of vlmrl; from elsewhere: .package(url: "<vlmrl repository>", branch: "main").
    .package(name: "vlmrl", path: "../../.."),
  ],
  targets: [
    .target(name: "ExampleReward", dependencies: [.product(name: "VLMRLKit", package: "vlmrl")],
            swiftSettings: [.swiftLanguageMode(.v6)]),
    .executableTarget(name: "train-with-swift-reward", dependencies: ["ExampleReward"],
                      swiftSettings: [.swiftLanguageMode(.v6)]),
  ]
)
