import Foundation
import Testing

@testable import SafeTensors

/// SplitMix64: a small seeded generator so fuzz failures replay exactly.
struct SeededGenerator: RandomNumberGenerator {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

@Suite struct FuzzTests {
  /// A parse either throws a SafeTensorsError or yields tensors that tile the data section.
  func checkInvariants(_ image: [UInt8]) {
    do {
      let header = try parseImage(image)
      var cursor = header.dataStart
      for tensor in header.tensors {
        #expect(tensor.byteRange.lowerBound == cursor)
        #expect(tensor.byteRange.upperBound <= image.count)
        #expect(tensor.byteCount == tensor.elementCount * tensor.dtype.byteSize)
        cursor = tensor.byteRange.upperBound
      }
      #expect(cursor == image.count)
    } catch {
      #expect(!error.description.isEmpty)
    }
  }

  @Test func mutatedReferenceFiles() throws {
    var random = SeededGenerator(state: 20_240_611)
    let originals = [try Golden.fileBytes("dtypes.safetensors"), try Golden.fileBytes("names.safetensors")]
    for round in 0..<3000 {
      var image = originals[round % originals.count]
      let headerEnd = min(image.count, 8 + Int(image[0]) + Int(image[1]) << 8)
      for _ in 0..<Int.random(in: 1...4, using: &random) {
        switch Int.random(in: 0..<6, using: &random) {
        case 0:  // flip a header byte to a JSON-significant or random character
          guard min(headerEnd, image.count) > 0 else { continue }
          let position = Int.random(in: 0..<min(headerEnd, image.count), using: &random)
          let pool: [UInt8] = Array("{}[]\":,0123456789-.eE \\u".utf8) + [0, 0x80, 0xFF, UInt8.random(in: 0...255, using: &random)]
          image[position] = pool.randomElement(using: &random) ?? 0
        case 1:  // truncate
          image.removeLast(Int.random(in: 0...min(image.count, 64), using: &random))
        case 2:  // insert bytes into the header
          let position = Int.random(in: 8...max(8, min(headerEnd, image.count)), using: &random)
          image.insert(contentsOf: Array("[{\"".utf8).shuffled(using: &random), at: min(position, image.count))
        case 3:  // change the declared length
          if image.count >= 8 { image[Int.random(in: 0..<8, using: &random)] = UInt8.random(in: 0...255, using: &random) }
        case 4:  // append data
          image.append(contentsOf: [UInt8](repeating: 7, count: Int.random(in: 1...16, using: &random)))
        default:  // change a digit in the offsets
          if let position = image.indices.filter({ $0 >= 8 && $0 < min(headerEnd, image.count) && (0x30...0x39).contains(image[$0]) }).randomElement(using: &random) {
            image[position] = UInt8.random(in: 0x30...0x39, using: &random)
          }
        }
      }
      checkInvariants(image)
    }
  }

  @Test func randomHeaders() {
    var random = SeededGenerator(state: 7)
    let dtypes = TensorDType.allCases.map(\.rawValue) + ["X", ""]
    for _ in 0..<3000 {
      var members: [String] = []
      var offset = 0
      for index in 0..<Int.random(in: 0...4, using: &random) {
        let dtype = dtypes.randomElement(using: &random) ?? "U8"
        let shape = (0..<Int.random(in: 0...3, using: &random)).map { _ in Int.random(in: 0...3, using: &random) }
        let size = (TensorDType(rawValue: dtype)?.byteSize ?? 1) * shape.reduce(1, *)
        let jitter = Int.random(in: 0..<6, using: &random) == 0 ? Int.random(in: -2...2, using: &random) : 0
        let end = offset + size + jitter
        members.append("\"t\(index)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":[\(offset),\(end)]}")
        offset = max(offset, end)
      }
      let dataSize = max(0, offset + (Int.random(in: 0..<8, using: &random) == 0 ? 1 : 0))
      let image = fileImage(header: "{" + members.shuffled(using: &random).joined(separator: ",") + "}", data: [UInt8](repeating: 1, count: dataSize))
      checkInvariants(image)
    }
  }
}
