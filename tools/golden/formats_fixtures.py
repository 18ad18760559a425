#!/usr/bin/env python3
"""Writes the Parquet and Arrow IPC fixtures of Tests/FormatsTests and the values they must decode to.

Requirements: python3 -m pip install pyarrow   (written with pyarrow 26; any recent version works)
Run from the repository root:  python3 tools/golden/formats_fixtures.py

Every fixture is read back here with pyarrow and its rows are written to Fixtures/expected.json in a
tagged form the Swift tests parse without ambiguity:
  null | ["bool", b] | ["int", "123"] | ["double", "1.5" | "nan" | "inf"] | ["string", s]
  | ["bytes", base64] | ["list", [v...]] | ["record", [[name, v]...]]
Integers are strings so that 64-bit values survive JSON; doubles are Python repr (round-trips exactly).
The output is deterministic: same pyarrow, same bytes.
"""
import base64
import datetime
import json
import os

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "FormatsTests", "Fixtures")


# MARK: - tables

def primitive_table():
    """12 rows of every physical type, with nulls in every nullable column."""
    n = 12
    return pa.table({
        "b": pa.array([None if i % 5 == 4 else (i % 3 == 0) for i in range(n)], pa.bool_()),
        "i32": pa.array([None if i % 4 == 3 else (i * 7919 - 40000) for i in range(n)], pa.int32()),
        "i64": pa.array([None if i == 2 else (i - 6) * 1_000_000_007_123 for i in range(n)], pa.int64()),
        "i8": pa.array([(i * 37) % 256 - 128 for i in range(n)], pa.int8()),
        "u32": pa.array([4_000_000_000 + i for i in range(n)], pa.uint32()),
        "f32": pa.array([None if i == 7 else i * 0.25 - 1.1 for i in range(n)], pa.float32()),
        "f64": pa.array([float("inf") if i == 5 else (None if i == 9 else i / 3.0) for i in range(n)],
                        pa.float64()),
        "s": pa.array([None if i % 6 == 1 else ("row %d " % i) + "é" * (i % 3) for i in range(n)], pa.string()),
        "bin": pa.array([None if i == 0 else bytes(range(i, i * 2)) for i in range(n)], pa.binary()),
        "fixed": pa.array([None if i == 3 else bytes([i, 255 - i, 7]) for i in range(n)], pa.binary(3)),
        "cat": pa.array(["cat", "dog", "cat", "bird"] * 3, pa.string()),
        "req": pa.array(list(range(100, 100 + n)), pa.int64()),
        "ts": pa.array([datetime.datetime(2024, 1, 1) + datetime.timedelta(seconds=i * 3601) for i in range(n)],
                       pa.timestamp("ms")),
    }, schema=pa.schema([
        ("b", pa.bool_()), ("i32", pa.int32()), ("i64", pa.int64()), ("i8", pa.int8()), ("u32", pa.uint32()),
        ("f32", pa.float32()), ("f64", pa.float64()), ("s", pa.string()), ("bin", pa.binary()),
        ("fixed", pa.binary(3)), ("cat", pa.string()), pa.field("req", pa.int64(), nullable=False),
        ("ts", pa.timestamp("ms")),
    ]))


def tiny_png(seed):
    """Not a real image: a few bytes with a PNG signature, enough to carry through the readers."""
    return b"\x89PNG\r\n\x1a\n" + bytes((seed * 31 + k) % 256 for k in range(5 + seed % 4))


def nested_table():
    """Hugging Face shapes: image struct<bytes, path>, list<string>, list<int64>, plus deeper nesting."""
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    images = [
        {"bytes": tiny_png(0), "path": "a.png"},
        {"bytes": tiny_png(1), "path": None},
        None,
        {"bytes": None, "path": "only/path.jpg"},
        {"bytes": tiny_png(4), "path": "e.png"},
        {"bytes": b"", "path": ""},
        {"bytes": tiny_png(6), "path": "g.png"},
    ]
    words = [["a", "bb"], [], None, ["x", None, "z"], ["solo"], [None], ["p", "q", "r", "s"]]
    numbers = [[1, 2, 3], None, [], [-(2 ** 62)], [None, 5], [7], [8, 9]]
    grid = [[[1, 2], [3]], [], None, [[], [4]], [None, [5, None]], [[6]], [[7, 8, 9]]]
    people = [
        [{"name": "ann", "tags": ["x"]}],
        [],
        None,
        [{"name": None, "tags": []}, {"name": "bo", "tags": None}],
        [None],
        [{"name": "cy", "tags": ["p", "q"]}],
        [{"name": "di", "tags": [None]}],
    ]
    mapping = [{"k1": 1}, {}, None, {"a": None, "b": 2}, {"z": 26}, {"y": 25}, {"x": 24, "w": 23}]
    return pa.table({
        "id": pa.array(range(7), pa.int64()),
        "image": pa.array(images, image_type),
        "words": pa.array(words, pa.list_(pa.string())),
        "numbers": pa.array(numbers, pa.list_(pa.int64())),
        "grid": pa.array(grid, pa.list_(pa.list_(pa.int32()))),
        "people": pa.array(people, pa.list_(pa.struct([("name", pa.string()), ("tags", pa.list_(pa.string()))]))),
        "mapping": pa.array([list(m.items()) if m is not None else None for m in mapping],
                            pa.map_(pa.string(), pa.int32())),
    })


def hf_table():
    """A Hugging Face R1-V-like shard: image, problem, solution; several row groups."""
    n = 9
    return pa.table({
        "image": pa.array([{"bytes": tiny_png(i), "path": None} for i in range(n)],
                          pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        "problem": pa.array(["How many objects are there? (%d)" % i for i in range(n)]),
        "solution": pa.array(["<answer> %d </answer>" % (i % 4) for i in range(n)]),
    })


def arrow_extra_table():
    """Arrow-only types: large_* offsets, float16, date32, fixed_size_list."""
    import numpy as np
    n = 5
    return pa.table({
        "ls": pa.array(["α", None, "", "long " * 3, "z"], pa.large_string()),
        "lb": pa.array([b"\x00\x01", b"", None, b"\xff", b"ok"], pa.large_binary()),
        "ll": pa.array([[1], [], None, [2, 3], [None]], pa.large_list(pa.int16())),
        "half": pa.array(np.array([0.5, -2.0, 65504.0, 0.0, 1.0 / 3.0], dtype=np.float16), pa.float16()),
        "day": pa.array([datetime.date(1970, 1, 1) + datetime.timedelta(days=i * 400) for i in range(n)],
                        pa.date32()),
        "fsl": pa.array([[1.0, 2.0], None, [3.5, -1.0], [0.0, 0.0], [9.0, 8.0]], pa.list_(pa.float32(), 2)),
        "u64": pa.array([0, 1, 2 ** 63 - 1, None, 5], pa.uint64()),
    })


def dictionary_batches():
    """Dictionary-encoded columns whose dictionary grows (a delta) and is then replaced."""
    def batch(words, codes):
        return pa.record_batch({
            "word": pa.DictionaryArray.from_arrays(pa.array(codes, pa.int8()), pa.array(words)),
            "n": pa.array(range(len(codes)), pa.int64()),
        })
    return [
        batch(["cat", "dog"], [0, 1, None, 0]),
        batch(["cat", "dog", "bird"], [2, 2, 1]),
        batch(["zebra"], [0, None]),
    ]


def write_dictionary_arrow():
    """A stream with a dictionary delta and a replacement; a file with one unified dictionary."""
    batches = dictionary_batches()
    cases = []
    stream = os.path.join(OUT, "dictionary_stream.arrow")
    with pa.OSFile(stream, "wb") as sink:
        with ipc.new_stream(sink, batches[0].schema, options=ipc.IpcWriteOptions(emit_dictionary_deltas=True)) as writer:
            for b in batches:
                writer.write_batch(b)
    file_path = os.path.join(OUT, "dictionary_file.arrow")
    unified = pa.Table.from_batches(batches).unify_dictionaries().combine_chunks().to_batches(max_chunksize=4)
    with pa.OSFile(file_path, "wb") as sink:
        with ipc.new_file(sink, unified[0].schema) as writer:
            for b in unified:
                writer.write_batch(b)
    table = pa.Table.from_batches(batches)
    for name, rows in (("dictionary_stream.arrow", [b.num_rows for b in batches]),
                       ("dictionary_file.arrow", [b.num_rows for b in unified])):
        cases.append({"file": name, "batches": len(rows), "batchRows": rows, "columns": table.column_names,
                      "rows": expected_rows(table)})
    return cases


def write_union_arrow():
    """A column this reader does not decode (a sparse union) before one it does; no expected rows:
    the tests check that the union is refused by name and the next column still reads."""
    union = pa.UnionArray.from_sparse(pa.array([0, 1, 0], pa.int8()),
                                      [pa.array([1, 2, 3], pa.int32()), pa.array(["a", "b", "c"])])
    batch = pa.record_batch({"u": union, "x": pa.array([10, 20, 30], pa.int64())})
    with pa.OSFile(os.path.join(OUT, "union_stream.arrow"), "wb") as sink:
        with ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)


# MARK: - expected values

def tagged(value, dtype):
    if value is None:
        return None
    if pa.types.is_dictionary(dtype):
        return tagged(value, dtype.value_type)
    if pa.types.is_struct(dtype):
        return ["record", [[f.name, tagged(value.get(f.name), f.type)] for f in dtype]]
    if pa.types.is_map(dtype):
        entry = pa.struct([("key", dtype.key_type), ("value", dtype.item_type)])
        return ["list", [tagged({"key": k, "value": v}, entry) for k, v in value]]
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_fixed_size_list(dtype):
        return ["list", [tagged(v, dtype.value_type) for v in value]]
    if pa.types.is_boolean(dtype):
        return ["bool", bool(value)]
    if pa.types.is_integer(dtype):
        return ["int", str(int(value) if int(value) < 2 ** 63 else int(value) - 2 ** 64)]
    if pa.types.is_floating(dtype):
        return ["double", repr(float(value))]
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return ["string", value]
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype) or pa.types.is_fixed_size_binary(dtype):
        return ["bytes", base64.b64encode(value).decode()]
    raise TypeError("no tag for %s" % dtype)


def temporal_as_int(table):
    """Dates and timestamps decode to their stored integers (days, milliseconds)."""
    columns = []
    for field, column in zip(table.schema, table.columns):
        if pa.types.is_date32(field.type):
            column = column.cast(pa.int32())
        elif pa.types.is_timestamp(field.type):
            column = column.cast(pa.int64())
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def expected_rows(table):
    table = temporal_as_int(table)
    return [{name: tagged(row[name], table.schema.field(name).type) for name in table.column_names}
            for row in table.to_pylist()]


# MARK: - writers

PARQUET_VARIANTS = {
    # name: (table, write_table keyword arguments)
    "plain_none_v1": ("primitive", dict(use_dictionary=False, compression="none", data_page_version="1.0")),
    "dict_snappy_v1": ("primitive", dict(use_dictionary=True, compression="snappy", data_page_version="1.0")),
    "dict_zstd_v2": ("primitive", dict(use_dictionary=True, compression="zstd", data_page_version="2.0")),
    "dict_gzip_format1": ("primitive", dict(version="1.0", use_dictionary=True, compression="gzip",
                                            data_page_version="1.0")),
    "plain_gzip_v2": ("primitive", dict(use_dictionary=False, compression="gzip", data_page_version="2.0")),
    "plain_lz4_v1": ("primitive", dict(use_dictionary=False, compression="lz4", data_page_version="1.0")),
    "delta_v1": ("primitive", dict(use_dictionary=False, compression="none", data_page_version="1.0",
                                   column_encoding={"i32": "DELTA_BINARY_PACKED", "i64": "DELTA_BINARY_PACKED",
                                                    "req": "DELTA_BINARY_PACKED", "s": "DELTA_LENGTH_BYTE_ARRAY",
                                                    "bin": "DELTA_BYTE_ARRAY", "cat": "DELTA_BYTE_ARRAY",
                                                    "f32": "BYTE_STREAM_SPLIT", "f64": "BYTE_STREAM_SPLIT",
                                                    "b": "RLE"})),
    "delta_zstd_v2": ("primitive", dict(use_dictionary=False, compression="zstd", data_page_version="2.0",
                                        column_encoding={"i32": "DELTA_BINARY_PACKED", "ts": "DELTA_BINARY_PACKED",
                                                         "s": "DELTA_BYTE_ARRAY", "bin": "DELTA_LENGTH_BYTE_ARRAY",
                                                         "b": "RLE"})),
    "nested_snappy_v1": ("nested", dict(use_dictionary=True, compression="snappy", data_page_version="1.0")),
    "nested_plain_v2": ("nested", dict(use_dictionary=False, compression="none", data_page_version="2.0")),
    "hf_snappy": ("hf", dict(compression="snappy")),
    "float16": ("float16", dict(compression="none")),
}

def float16_table():
    import numpy as np
    values = np.array([0.5, -2.0, 65504.0, 0.0, 1.0 / 3.0, 6e-8], dtype=np.float16)
    return pa.table({"h": pa.array(values, pa.float16(), mask=np.array([False, False, True, False, False, False]))})


TABLES = {"primitive": primitive_table, "nested": nested_table, "hf": hf_table, "float16": float16_table}


def write_parquet(name, table, options):
    path = os.path.join(OUT, name + ".parquet")
    # Small row groups and pages so that every file has several of each.
    pq.write_table(table, path, row_group_size=5 if table.num_rows > 7 else 3, data_page_size=64,
                   write_batch_size=2, write_statistics=False, **options)
    metadata = pq.ParquetFile(path).metadata
    return {
        "file": name + ".parquet",
        "rowGroups": metadata.num_row_groups,
        "rowGroupRows": [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)],
        "columns": table.column_names,
        "rows": expected_rows(pq.read_table(path)) if name.startswith("nested") else expected_rows(table),
    }


def write_arrow(name, table, file_format, compression, chunk):
    path = os.path.join(OUT, name)
    options = ipc.IpcWriteOptions(compression=compression)
    with pa.OSFile(path, "wb") as sink:
        open_writer = ipc.new_file if file_format else ipc.new_stream
        with open_writer(sink, table.schema, options=options) as writer:
            writer.write_table(table, max_chunksize=chunk)
    read = ipc.open_file(path) if file_format else ipc.open_stream(path)
    batches = [read.get_batch(i) for i in range(read.num_record_batches)] if file_format else list(read)
    return {
        "file": name,
        "batches": len(batches),
        "batchRows": [b.num_rows for b in batches],
        "columns": table.column_names,
        "rows": expected_rows(table),
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    parquet = [write_parquet(name, TABLES[kind](), options) for name, (kind, options) in PARQUET_VARIANTS.items()]
    arrow = [
        write_arrow("nested_stream.arrow", nested_table(), False, None, 3),
        write_arrow("primitive_stream_zstd.arrow", primitive_table(), False, "zstd", 5),
        write_arrow("primitive_file.arrow", primitive_table(), True, None, 4),
        write_arrow("nested_file_lz4.arrow", nested_table(), True, "lz4", 7),
        write_arrow("extra_stream.arrow", arrow_extra_table(), False, None, 2),
        write_arrow("hf_data-00000-of-00001.arrow", hf_table(), False, None, 4),
    ] + write_dictionary_arrow()
    write_union_arrow()
    with open(os.path.join(OUT, "expected.json"), "w") as out:
        json.dump({"pyarrow": pa.__version__, "parquet": parquet, "arrow": arrow}, out, sort_keys=True)
        out.write("\n")


if __name__ == "__main__":
    main()
