import Common
import Foundation
import Imaging

@testable import Datasets

/// A fresh temporary folder per test.
func makeTempFolder(_ name: String = #function) throws -> URL {
  let clean = name.filter { $0.isLetter || $0.isNumber }
  let url = FileManager.default.temporaryDirectory
    .appendingPathComponent("datasets-tests-\(clean)-\(UUID().uuidString.prefix(8))")
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  return url
}

/// Writes a solid-color PNG of the given size and returns its URL.
@discardableResult
func writePNG(_ folder: URL, _ name: String, width: Int, height: Int) throws -> URL {
  let image = RGBImage(width: width, height: height, pixels: [UInt8](repeating: 128, count: width * height * 3))
  let url = folder.appendingPathComponent(name)
  try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
  try encodePNG(image).write(to: url)
  return url
}

@discardableResult
func writeText(_ folder: URL, _ name: String, _ text: String) throws -> URL {
  let url = folder.appendingPathComponent(name)
  try Data(text.utf8).write(to: url)
  return url
}

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

func textPart(_ example: Example) -> String? {
  for case .text(let text) in example.prompt { return text }
  return nil
}
