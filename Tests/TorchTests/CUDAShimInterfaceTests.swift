import Foundation
import Testing

/// The CUDA library is looked up with `dlsym` by name, and the result is cast to a function type of
/// vlmrl_cuda.h. The compiler checks the types, not that each name is cast to its own type, so this
/// reads the sources (no GPU needed): every lookup of `vtc_x` must cast to `vtc_x_fn`, and every
/// function the header declares, except the unused `vtc_clear_error`, must be looked up.
@Suite struct CUDAShimInterfaceTests {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  static func read(_ path: String) throws -> String {
    try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
  }

  static func matches(_ pattern: String, in text: String) throws -> [[String]] {
    let regex = try NSRegularExpression(pattern: pattern)
    return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { match in
      (1..<match.numberOfRanges).map { String(text[Range(match.range(at: $0), in: text)!]) }
    }
  }

  @Test func everyLookupCastsToItsOwnFunctionType() throws {
    let swift = try ["Sources/Torch/CUDA.swift", "Sources/Torch/FusedKernels.swift"].map(Self.read).joined()
    let lookups = try Self.matches(#"symbol\("(vtc_\w+)",\s*(\w+)\.self\)"#, in: swift)
    #expect(lookups.count >= 20, "the lookups were not found: the pattern is out of date")
    for lookup in lookups { #expect(lookup[1] == lookup[0] + "_fn", "\(lookup[0]) is cast to \(lookup[1])") }

    let header = try Self.read("Sources/CTorch/include/vlmrl_cuda.h")
    let declared = Set(try Self.matches(#"(vtc_\w+)_f\("#, in: header).map { $0[0] })
    #expect(declared.contains("vtc_synchronize") && declared.contains("vtc_decode_attention"))
    let looked = Set(lookups.map { $0[0] })
    #expect(looked.subtracting(declared).isEmpty, "looked up but not declared: \(looked.subtracting(declared))")
    #expect(declared.subtracting(looked) == ["vtc_clear_error"], "declared but not looked up: \(declared.subtracting(looked))")
  }
}
