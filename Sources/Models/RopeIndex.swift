import Foundation
import ModelConfig

/// Multimodal RoPE position ids, exactly as transformers' `get_rope_index` (docs/qwen-vl.md 4.4), computed on
/// the host from token ids (cheap integer work; the tensors are built once per prompt).
public struct RopePositions: Sendable, Equatable {
  /// `[3][length]`: temporal, height and width positions of each token.
  public var channels: [[Int]]
  /// `max position + 1 - length` (negative when images compress positions); decode step `c` of a
  /// cached sequence uses position `c + delta` on all three channels.
  public var delta: Int

  public var length: Int { channels[0].count }

  /// Appends `count` text tokens after the current ones (completion tokens: always text, even when a
  /// policy emits vision special tokens — they are never treated as image slots).
  public func extended(by count: Int) -> RopePositions {
    guard count > 0 else { return self }
    let start = length + delta
    var result = self
    for c in 0..<3 { result.channels[c] += (0..<count).map { start + $0 } }
    return result
  }
}

public enum RopeIndex {
  public struct Tokens: Sendable {
    public var image: Int
    public var video: Int
    public var visionStart: Int
    public init(image: Int, video: Int, visionStart: Int) {
      self.image = image
      self.video = video
      self.visionStart = visionStart
    }
  }

  /// Positions of one unpadded sequence. `imageGrids` / `videoGrids` are (t, h, w) in patches, in
  /// order of appearance; `secondsPerGrid` applies to videos (Qwen2.5-VL), default 1.0.
  public static func compute(ids: [Int], imageGrids: [[Int]], videoGrids: [[Int]] = [], tokens: Tokens,
                             mergeSize: Int, family: QwenVLFamily, tokensPerSecond: Int = 2,
                             secondsPerGrid: [Double] = []) -> RopePositions {
    let n = ids.count
    if imageGrids.isEmpty && videoGrids.isEmpty {
      let positions = Array(0..<n)
      return RopePositions(channels: [positions, positions, positions], delta: 0)
    }
    var imageCount = 0, videoCount = 0
    for i in 0..<max(0, n - 1) where ids[i] == tokens.visionStart {
      if ids[i + 1] == tokens.image { imageCount += 1 }
      if ids[i + 1] == tokens.video { videoCount += 1 }
    }
    var channels: [[Int]] = [[], [], []]
    var maxSoFar = -1
    var start = 0
    var remainingImages = imageCount, remainingVideos = videoCount
    var imageIndex = 0, videoIndex = 0
    func firstIndex(of token: Int, from: Int) -> Int {
      var i = from
      while i < n { if ids[i] == token { return i }; i += 1 }
      return n + 1
    }
    for _ in 0..<(imageCount + videoCount) {
      let imageEnd = remainingImages > 0 ? firstIndex(of: tokens.image, from: start) : n + 1
      let videoEnd = remainingVideos > 0 ? firstIndex(of: tokens.video, from: start) : n + 1
      let grid: [Int], seconds: Double, end: Int
      if imageEnd < videoEnd {
        grid = imageGrids[imageIndex]; imageIndex += 1; remainingImages -= 1; seconds = 0; end = imageEnd
      } else {
        grid = videoGrids[videoIndex]
        seconds = videoIndex < secondsPerGrid.count ? secondsPerGrid[videoIndex] : 1.0
        videoIndex += 1; remainingVideos -= 1; end = videoEnd
      }
      let (gt, gh, gw) = (grid[0], grid[1] / mergeSize, grid[2] / mergeSize)
      let textLength = end - start
      let startIndex = maxSoFar + 1
      for i in 0..<textLength { for c in 0..<3 { channels[c].append(startIndex + i) } }
      let base = startIndex + textLength
      var chunkMax = startIndex + textLength - 1
      for ti in 0..<gt {
        let temporal = family == .qwen2VL ? ti : Int(Double(ti) * seconds * Double(tokensPerSecond))
        for hi in 0..<gh {
          for wi in 0..<gw {
            channels[0].append(base + temporal)
            channels[1].append(base + hi)
            channels[2].append(base + wi)
            chunkMax = max(chunkMax, base + max(temporal, hi, wi))
          }
        }
      }
      maxSoFar = max(maxSoFar, chunkMax)
      start = end + gt * gh * gw
    }
    if start < n {
      let startIndex = maxSoFar + 1
      for i in 0..<(n - start) { for c in 0..<3 { channels[c].append(startIndex + i) } }
      maxSoFar = startIndex + n - start - 1
    }
    return RopePositions(channels: channels, delta: maxSoFar + 1 - n)
  }
}
