#!/usr/bin/env python3
"""Checks TensorBoard event files written by vlmrl with the `tensorboard` package itself.

Requirements: python3 -m pip install tensorboard

Usage:
  tools/verify_tensorboard.py                 # the committed Swift-written fixture, exact values
  tools/verify_tensorboard.py OUTPUT/runs     # any run folder or event file: prints its scalars

Each record's length and payload CRCs are recomputed with tensorboard's masked CRC32C, the
first event must carry file_version "brain.Event:2", and the scalars are read back through
tensorboard's EventAccumulator (the code path of `tensorboard --logdir`).
"""
import math
import pathlib
import struct
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

FIXTURE = (pathlib.Path(__file__).resolve().parent.parent
           / "Tests/TrainingTests/Fixtures/tensorboard/events.out.tfevents.1700000000.fixture")

# What TensorBoardTests.writeSample writes (the NaN kl at step 12 is skipped by the writer).
EXPECTED = {
    "loss": [(4, 0.5), (8, 0.25), (12, -0.125)],
    "reward": [(4, -1.25), (8, 0.75), (12, 1.5)],
    "rewards/format/mean": [(4, 0.125), (8, 0.5), (12, 1.0)],
    "kl": [(4, 3.0), (8, 2.5)],
}


def records(path):
    """Yields each record's payload after checking both masked CRCs."""
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        header = data[offset:offset + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[offset + 8:offset + 12])
        assert length_crc == masked_crc32c(header), f"{path}: bad length CRC at byte {offset}"
        payload = data[offset + 12:offset + 12 + length]
        (payload_crc,) = struct.unpack("<I", data[offset + 12 + length:offset + 16 + length])
        assert payload_crc == masked_crc32c(payload), f"{path}: bad payload CRC at byte {offset}"
        yield payload
        offset += 16 + length
    assert offset == len(data), f"{path}: trailing bytes"


def check_file(path):
    events = []
    for payload in records(path):
        event = event_pb2.Event()
        event.ParseFromString(payload)
        events.append(event)
    assert events and events[0].file_version == "brain.Event:2", f"{path}: no file_version record first"
    return events


def scalars(path):
    accumulator = EventAccumulator(str(path))
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}


def main():
    if len(sys.argv) > 1:
        target = pathlib.Path(sys.argv[1])
        files = sorted(target.rglob("*tfevents*")) if target.is_dir() else [target]
        assert files, f"no event files under {target}"
        for file in files:
            events = check_file(file)
            print(f"{file}: {len(events)} records, CRCs and file_version ok")
            for tag, points in sorted(scalars(file).items()):
                print(f"  {tag}: {len(points)} points, last step {points[-1][0]} value {points[-1][1]:.6g}")
        return
    check_file(FIXTURE)
    found = scalars(FIXTURE)
    assert set(found) == set(EXPECTED), f"tags {sorted(found)} != {sorted(EXPECTED)}"
    for tag, points in EXPECTED.items():
        got = found[tag]
        assert [s for s, _ in got] == [s for s, _ in points], f"{tag}: steps {got}"
        for (_, value), (_, want) in zip(got, points):
            assert math.isclose(value, want, rel_tol=0, abs_tol=0), f"{tag}: {got} != {points}"
    print(f"{FIXTURE.name}: read by tensorboard {__import__('tensorboard').__version__}, "
          f"{sum(len(p) for p in EXPECTED.values())} scalars as written")


if __name__ == "__main__":
    main()
