import Foundation

// Qwen-VL image pads: the chat template writes one `<|image_pad|>` per image; the processor decides
// how many tokens each image becomes, and the prompt carries that many pads.

/// A mismatch between the pad tokens in a prompt and the images given for it.
public struct ImagePadError: Error, Sendable, CustomStringConvertible {
  public var message: String
  public var description: String { message }
}

/// Replaces each single `padToken` in `text`, in order, by `imageTokenCounts[i]` copies of it
/// (Qwen2VLProcessor: `grid_t * grid_h * grid_w / merge_size²` per image). The number of pads must
/// equal the number of counts, and every count must be positive.
public func expandImagePads(
  _ text: String, imageTokenCounts: [Int], padToken: String = "<|image_pad|>"
) throws(ImagePadError) -> String {
  let pad = Array(padToken.utf8)
  guard !pad.isEmpty else { throw ImagePadError(message: "expandImagePads: the pad token is empty") }
  if let bad = imageTokenCounts.firstIndex(where: { $0 <= 0 }) {
    throw ImagePadError(message: "expandImagePads: image \(bad) has token count \(imageTokenCounts[bad]); counts must be positive")
  }
  let bytes = Array(text.utf8)
  var out: [UInt8] = []
  out.reserveCapacity(bytes.count + imageTokenCounts.reduce(0, +) * pad.count)
  var found = 0
  var i = 0
  while i < bytes.count {
    if bytes[i] == pad[0], i + pad.count <= bytes.count, bytes[i..<i + pad.count].elementsEqual(pad) {
      if found < imageTokenCounts.count {
        for _ in 0..<imageTokenCounts[found] { out.append(contentsOf: pad) }
      }
      found += 1
      i += pad.count
    } else {
      out.append(bytes[i])
      i += 1
    }
  }
  guard found == imageTokenCounts.count else {
    throw ImagePadError(message:
      "expandImagePads: the text has \(found) '\(padToken)' token(s) but \(imageTokenCounts.count) image token count(s) were given")
  }
  return String(decoding: out, as: UTF8.self)
}
