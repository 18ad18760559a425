import Foundation
import Imaging

/// An example with its images decoded (or the error that stopped decoding them).
public struct DecodedExample: Sendable {
  /// Position of the example in the order being iterated.
  public var position: Int
  public var example: Example
  /// The decoded images in prompt order, or why they could not be decoded (the record is named).
  public var images: Result<[RGBImage], DatasetError>
}

/// Decodes the images of examples ahead of use on background tasks, with at most `lookahead`
/// examples decoded or decoding at once (bounded memory), so a consumer never waits on JPEG
/// decoding unless it outruns all workers.
///
/// ```swift
/// for await item in ImagePrefetcher(examples: batch, lookahead: 16) { ... }
/// ```
public struct ImagePrefetcher: AsyncSequence, Sendable {
  public typealias Element = DecodedExample

  public var examples: [Example]
  /// Positions into `examples`, in the order to deliver (default: in order).
  public var order: [Int]
  public var lookahead: Int
  public var decode: @Sendable (ImageSource) throws -> RGBImage

  public init(
    examples: [Example], order: [Int]? = nil, lookahead: Int = 8,
    decode: @escaping @Sendable (ImageSource) throws -> RGBImage = ImageLoader.decode
  ) {
    self.examples = examples
    self.order = (order ?? Array(examples.indices)).filter { examples.indices.contains($0) }
    self.lookahead = Swift.max(1, lookahead)
    self.decode = decode
  }

  public func makeAsyncIterator() -> Iterator { Iterator(sequence: self) }

  public struct Iterator: AsyncIteratorProtocol {
    let sequence: ImagePrefetcher
    private var next = 0
    private var started = 0
    private var pending: [Int: Task<DecodedExample, Never>] = [:]

    init(sequence: ImagePrefetcher) { self.sequence = sequence }

    /// Number of examples decoded or being decoded ahead of the consumer (for tests and metrics).
    public var inFlight: Int { pending.count }

    public mutating func next() async -> DecodedExample? {
      guard next < sequence.order.count else { return nil }
      // The window holds `lookahead` examples, the one about to be returned included.
      while started < sequence.order.count, started < next + sequence.lookahead { startTask(started) }
      guard let task = pending.removeValue(forKey: next) else { return nil }
      next += 1
      return await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() }
    }

    private mutating func startTask(_ position: Int) {
      started += 1
      let index = sequence.order[position]
      guard sequence.examples.indices.contains(index) else { return }
      let example = sequence.examples[index]
      let decode = sequence.decode
      pending[position] = Task.detached(priority: .medium) {
        DecodedExample(position: position, example: example, images: ImagePrefetcher.decodeAll(example, decode))
      }
    }
  }

  static func decodeAll(_ example: Example, _ decode: (ImageSource) throws -> RGBImage) -> Result<[RGBImage], DatasetError> {
    do {
      return .success(try example.images.map { try decode($0.source) })
    } catch let error as DatasetError {
      return .failure(.image("\(example.source)", reason: "\(error)"))
    } catch {
      return .failure(.image("\(example.source)", reason: "\(error)"))
    }
  }
}
