/// The Parquet schema as a tree (the footer stores it flattened, depth first, with child counts),
/// with each node's definition and repetition levels and the leaf columns beneath it.
struct SchemaNode: Sendable {
  var name: String
  var repetition: ParquetRepetition
  var annotation: ParquetAnnotation
  var children: [SchemaNode]
  /// Definition level at which this node is present (optional and repeated ancestors, itself included).
  var definitionLevel: Int
  /// Number of repeated nodes from the root down to this one, itself included.
  var repetitionLevel: Int
  /// Indices of the leaf columns under this node, in column-chunk order.
  var leaves: Range<Int>
  var leafType: LeafType?

  var isLeaf: Bool { children.isEmpty }

  /// For LIST- and MAP-annotated groups, the repeated child and the node each element is read as,
  /// following the backward-compatibility rules of parquet-format LogicalTypes.md: a repeated
  /// primitive, or a repeated group with several fields or named `array` / `<list>_tuple`, is
  /// itself the element; otherwise its single child is.
  var listShape: (repeated: SchemaNode, element: SchemaNode?)? {
    guard annotation == .list || annotation == .map, children.count == 1, let repeated = children.first,
      repeated.repetition == .repeated
    else { return nil }
    if repeated.isLeaf || repeated.children.count > 1 || repeated.name == "array" || repeated.name == name + "_tuple" {
      return (repeated, nil)
    }
    return (repeated, repeated.children[0])
  }
}

enum SchemaBuilder {
  static let maximumDepth = 64

  /// Builds the tree from the footer's flat list; returns the root's children (the top-level
  /// columns) and every leaf column in order.
  static func build(_ elements: [SchemaElement]) throws -> (columns: [SchemaNode], leaves: [LeafColumn]) {
    guard let root = elements.first else { throw DecodeFailure.corrupt("empty schema") }
    var next = 1
    var leaves: [LeafColumn] = []
    var columns: [SchemaNode] = []
    for _ in 0..<root.childCount {
      columns.append(try node(elements, &next, &leaves, parent: (0, 0, []), depth: 1))
    }
    guard next == elements.count else {
      throw DecodeFailure.corrupt("schema lists \(elements.count) elements, the tree uses \(next)")
    }
    return (columns, leaves)
  }

  private static func node(_ elements: [SchemaElement], _ next: inout Int, _ leaves: inout [LeafColumn],
                           parent: (definition: Int, repetition: Int, path: [String]), depth: Int) throws -> SchemaNode {
    guard depth <= maximumDepth else { throw DecodeFailure.corrupt("schema nested deeper than \(maximumDepth)") }
    guard next < elements.count else { throw DecodeFailure.corrupt("schema ends inside a group") }
    let element = elements[next]
    next += 1
    let definition = parent.definition + (element.repetition == .required ? 0 : 1)
    let repetition = parent.repetition + (element.repetition == .repeated ? 1 : 0)
    let path = parent.path + [element.name]
    let firstLeaf = leaves.count
    var node = SchemaNode(name: element.name, repetition: element.repetition, annotation: element.annotation,
                          children: [], definitionLevel: definition, repetitionLevel: repetition,
                          leaves: firstLeaf..<firstLeaf, leafType: nil)
    if element.childCount == 0 {
      guard let physical = element.type else { throw DecodeFailure.corrupt("schema group \(element.name) has no fields") }
      if physical == .fixedLenByteArray && element.typeLength <= 0 {
        throw DecodeFailure.corrupt("column \(element.name) has fixed length \(element.typeLength)")
      }
      let type = LeafType(physical: physical, typeLength: element.typeLength, annotation: element.annotation)
      node.leafType = type
      leaves.append(LeafColumn(path: path, type: type, maxDefinition: definition, maxRepetition: repetition))
    } else {
      guard element.childCount <= elements.count - next else {
        throw DecodeFailure.corrupt("schema group \(element.name) claims \(element.childCount) children")
      }
      for _ in 0..<element.childCount {
        node.children.append(try self.node(elements, &next, &leaves,
                                           parent: (definition, repetition, path), depth: depth + 1))
      }
    }
    node.leaves = firstLeaf..<leaves.count
    return node
  }
}

/// Rebuilds nested values from the leaf columns' levels (record assembly of the Dremel paper, as
/// parquet-format describes levels). Every read consumes at least one entry of every leaf under
/// the node it reads, so assembly always ends; every index is checked.
struct RecordAssembler {
  /// Leaves under the assembled column, indexed from `firstLeaf`.
  private let firstLeaf: Int
  private let definitions: [[Int]?]
  private let repetitions: [[Int]?]
  private let values: [[FormatValue]]
  private let entryCounts: [Int]
  private var entry: [Int]
  private var valueIndex: [Int]

  /// `columns` are the decoded leaves `firstLeaf..<firstLeaf + columns.count`.
  init(firstLeaf: Int, columns: [LeafData]) {
    self.firstLeaf = firstLeaf
    definitions = columns.map(\.definitions)
    repetitions = columns.map(\.repetitions)
    values = columns.map(\.values)
    entryCounts = columns.map(\.entryCount)
    entry = Array(repeating: 0, count: columns.count)
    valueIndex = Array(repeating: 0, count: columns.count)
  }

  /// A top-level primitive column without repetition, decoded without walking the tree.
  static func flatColumn(_ data: LeafData, maxDefinition: Int) throws -> [FormatValue] {
    guard let definitions = data.definitions else { return data.values }
    var result: [FormatValue] = []
    result.reserveCapacity(definitions.count)
    var next = 0
    for level in definitions {
      if level == maxDefinition {
        guard next < data.values.count else { throw DecodeFailure.corrupt("fewer values than definition levels promise") }
        result.append(data.values[next])
        next += 1
      } else {
        result.append(.null)
      }
    }
    return result
  }

  /// The value of `node` for the current row or parent element.
  mutating func readField(_ node: SchemaNode) throws -> FormatValue {
    if node.repetition == .repeated { return .list(try readRepeated(node) { try $0.readPresent(node) }) }
    return try readPresent(node)
  }

  /// Reads `node` once, ignoring its own repetition: null when the levels say it is absent.
  private mutating func readPresent(_ node: SchemaNode) throws -> FormatValue {
    if try definition(node.leaves.lowerBound) < node.definitionLevel {
      try skipAbsent(node)
      return .null
    }
    if node.isLeaf { return try consumeValue(node.leaves.lowerBound) }
    if let shape = node.listShape {
      return .list(try readRepeated(shape.repeated) { assembler in
        if let element = shape.element { return try assembler.readField(element) }
        return try assembler.readPresent(shape.repeated)
      })
    }
    var fields: [(String, FormatValue)] = []
    fields.reserveCapacity(node.children.count)
    for child in node.children { fields.append((child.name, try readField(child))) }
    return .record(fields)
  }

  /// Reads the elements of a repeated node: empty when its definition level is not reached,
  /// otherwise elements until the repetition level says a new parent starts.
  private mutating func readRepeated(_ node: SchemaNode, _ element: (inout RecordAssembler) throws -> FormatValue)
    throws -> [FormatValue]
  {
    let first = node.leaves.lowerBound
    if try definition(first) < node.definitionLevel {
      try skipAbsent(node)
      return []
    }
    var items: [FormatValue] = []
    repeat {
      items.append(try element(&self))
    } while try hasEntry(first) && repetition(first) == node.repetitionLevel
    return items
  }

  private func slot(_ leaf: Int) throws -> Int {
    let slot = leaf - firstLeaf
    guard slot >= 0, slot < entry.count else { throw DecodeFailure.corrupt("leaf column \(leaf) was not read") }
    return slot
  }

  private func hasEntry(_ leaf: Int) throws -> Bool {
    let slot = try self.slot(leaf)
    return entry[slot] < entryCounts[slot]
  }

  private func definition(_ leaf: Int) throws -> Int {
    let slot = try self.slot(leaf)
    let index = entry[slot]
    guard index < entryCounts[slot] else { throw DecodeFailure.corrupt("levels of leaf column \(leaf) end early") }
    guard let levels = definitions[slot] else { return Int.max }
    guard index < levels.count else { throw DecodeFailure.corrupt("definition levels end early") }
    return levels[index]
  }

  private func repetition(_ leaf: Int) throws -> Int {
    let slot = try self.slot(leaf)
    guard let levels = repetitions[slot] else { return 0 }
    guard entry[slot] < levels.count else { throw DecodeFailure.corrupt("repetition levels end early") }
    return levels[entry[slot]]
  }

  /// Consumes one entry in every leaf under `node` (an absent node has one entry per leaf).
  private mutating func skipAbsent(_ node: SchemaNode) throws {
    for leaf in node.leaves {
      _ = try definition(leaf)
      entry[try slot(leaf)] += 1
    }
  }

  private mutating func consumeValue(_ leaf: Int) throws -> FormatValue {
    let slot = try self.slot(leaf)
    let index = valueIndex[slot]
    guard index < values[slot].count else {
      throw DecodeFailure.corrupt("leaf column \(leaf) has fewer values than its levels promise")
    }
    entry[slot] += 1
    valueIndex[slot] = index + 1
    return values[slot][index]
  }
}
