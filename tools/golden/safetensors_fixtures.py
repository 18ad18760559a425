#!/usr/bin/env python3
"""Golden safetensors files written by the reference library, for Tests/SafeTensorsTests.

Requirements: pip install safetensors numpy   (tested with safetensors 0.8.0, numpy 2.4)
Run from the repository root:  python3 tools/golden/safetensors_fixtures.py

Writes, under Tests/SafeTensorsTests/Fixtures/:
  dtypes.safetensors  every dtype of the format, an empty tensor, a scalar; metadata {"format": "pt"}
  names.safetensors   names and dtypes chosen to exercise the writer's ordering; escaped metadata
  expected.json       for every tensor: dtype, shape, raw bytes (hex), and decoded values where numpy
                      can decode them (bf16 decoded by widening to float32 here)
The Swift tests read these files back, and write the same tensors themselves and compare bytes, which
shows that files written by Swift are laid out exactly as the reference library lays them out.

With --verify DIR, opens every *.safetensors under DIR with the reference library and prints the
tensor names, dtypes and shapes (a manual check of files written by Swift).
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np
from safetensors import TensorSpec, safe_open, serialize

OUT = Path(__file__).resolve().parents[2] / "Tests" / "SafeTensorsTests" / "Fixtures"


def bf16_bytes(values):
    """Round-to-nearest-even float32 -> bfloat16, little endian."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16).tobytes()


def entry(dtype, shape, data):
    return {"dtype": dtype, "shape": list(shape), "data": bytes(data)}


def dtype_tensors():
    t = {}
    t["f64"] = entry("F64", [2, 2], np.array([1.5, -2.25, 1e300, -0.0], dtype="<f8").tobytes())
    t["f32"] = entry("F32", [2, 3], np.array([0.0, 1.0, -1.5, 3.25, 1e-8, 65504.0], dtype="<f4").tobytes())
    t["f16"] = entry("F16", [4], np.array([0.5, -2.0, 65504.0, 6.1035156e-05], dtype="<f2").tobytes())
    t["bf16"] = entry("BF16", [3], bf16_bytes([1.0, -3.140625, 1.0e20]))
    t["i64"] = entry("I64", [3], np.array([-(2**63), 0, 2**63 - 1], dtype="<i8").tobytes())
    t["i32"] = entry("I32", [2], np.array([-123456, 2**31 - 1], dtype="<i4").tobytes())
    t["i16"] = entry("I16", [2], np.array([-32768, 1234], dtype="<i2").tobytes())
    t["i8"] = entry("I8", [3], np.array([-128, 0, 127], dtype="i1").tobytes())
    t["u8"] = entry("U8", [2, 2], np.array([0, 1, 254, 255], dtype="u1").tobytes())
    t["u16"] = entry("U16", [1], np.array([65535], dtype="<u2").tobytes())
    t["u32"] = entry("U32", [2], np.array([0, 4000000000], dtype="<u4").tobytes())
    t["u64"] = entry("U64", [1], np.array([2**64 - 1], dtype="<u8").tobytes())
    t["bool"] = entry("BOOL", [3], bytes([1, 0, 1]))
    t["f8_e4m3"] = entry("F8_E4M3", [2], bytes([0x38, 0xC0]))  # 1.0, -2.0
    t["f8_e5m2"] = entry("F8_E5M2", [2], bytes([0x3C, 0xC0]))  # 1.0, -2.0
    t["empty"] = entry("F32", [2, 0], b"")
    t["scalar"] = entry("F32", [], np.array([42.5], dtype="<f4").tobytes())
    return t


def name_tensors():
    t = {}
    t["b"] = entry("F32", [1], np.array([1.0], dtype="<f4").tobytes())
    t["a"] = entry("F32", [1], np.array([2.0], dtype="<f4").tobytes())
    t["a.10"] = entry("BF16", [2], bf16_bytes([0.5, 0.25]))
    t["a.9"] = entry("BF16", [1], bf16_bytes([4.0]))
    t["Z"] = entry("I64", [1], np.array([7], dtype="<i8").tobytes())
    t["\u00e9t\u00e9/x"] = entry("U8", [3], bytes([9, 8, 7]))
    t["zz"] = entry("U8", [0], b"")
    t["model.layers.0.mlp.up_proj.weight"] = entry("F16", [2, 1], np.array([1.0, 2.0], dtype="<f2").tobytes())
    return t


def decode(dtype, data):
    kinds = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
             "I8": "i1", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8"}
    if dtype in kinds:
        return [v.item() for v in np.frombuffer(data, dtype=kinds[dtype])]
    if dtype == "BF16":
        widened = (np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        return [float(v) for v in widened]
    if dtype == "BOOL":
        return [bool(b) for b in data]
    return None  # F8: raw bytes only


def describe(tensors):
    out = {}
    for name, t in sorted(tensors.items()):
        values = decode(t["dtype"], t["data"])
        item = {"dtype": t["dtype"], "shape": t["shape"], "hex": t["data"].hex()}
        if values is not None:
            # Integers beyond 2^53 and special floats are kept as strings so JSON stays exact.
            item["values"] = [str(v) if isinstance(v, int) and abs(v) > 2**53 else v for v in values]
        out[name] = item
    return out


# Format dtype -> the dtype names TensorSpec accepts (safetensors >= 0.8).
SPEC_NAMES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
              "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "U16": "uint16",
              "U32": "uint32", "U64": "uint64", "BOOL": "bool", "F8_E4M3": "float8_e4m3fn",
              "F8_E5M2": "float8_e5m2"}


def to_specs(tensors):
    """TensorSpecs over numpy buffers; the buffers are returned too, to keep them alive."""
    buffers, specs = [], {}
    for name, t in tensors.items():
        buffer = np.frombuffer(t["data"] or b"\0", dtype=np.uint8).copy()
        buffers.append(buffer)
        specs[name] = TensorSpec(dtype=SPEC_NAMES[t["dtype"]], shape=t["shape"],
                                 data_ptr=buffer.ctypes.data, data_len=len(t["data"]))
    return specs, buffers


def write(name, tensors, metadata):
    specs, buffers = to_specs(tensors)
    data = bytes(serialize(specs, metadata=metadata))
    del buffers
    (OUT / name).write_bytes(data)
    # Read back through the library as a sanity check of the fixture itself.
    with safe_open(str(OUT / name), framework="numpy") as f:
        assert sorted(f.keys()) == sorted(tensors), name
        assert f.metadata() == metadata, name
    return data


def verify(folder):
    for path in sorted(Path(folder).rglob("*.safetensors")):
        with safe_open(str(path), framework="numpy") as f:
            print(path, f.metadata())
            for key in f.keys():
                t = f.get_slice(key)
                print(" ", key, t.get_dtype(), t.get_shape())


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--verify":
        verify(sys.argv[2])
        return
    OUT.mkdir(parents=True, exist_ok=True)
    dtypes = dtype_tensors()
    names = name_tensors()
    names_metadata = {"note": "quote \" backslash \\ newline \n slash / accent \u00e9 ctrl \u0001"}
    write("dtypes.safetensors", dtypes, {"format": "pt"})
    raw = write("names.safetensors", names, names_metadata)
    header_len = struct.unpack("<Q", raw[:8])[0]
    expected = {
        "dtypes.safetensors": {"metadata": {"format": "pt"}, "tensors": describe(dtypes)},
        "names.safetensors": {"metadata": names_metadata, "tensors": describe(names),
                              "header": raw[8:8 + header_len].decode("utf-8")},
    }
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
