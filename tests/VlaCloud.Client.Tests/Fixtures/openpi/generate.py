#!/usr/bin/env python3
"""Writes the msgpack-numpy fixtures the C# codec is tested against.

The encoding is the one openpi's client and server use (openpi_client/msgpack_numpy.py): numpy arrays
become maps with bytes keys {b"__ndarray__": True, b"data": arr.tobytes(), b"dtype": arr.dtype.str,
b"shape": arr.shape}, numpy scalars {b"__npgeneric__": True, b"data": x.item(), b"dtype": ...}, packed by
the reference Python msgpack with its defaults (use_bin_type=True). Regenerate with Debian's
python3-msgpack and python3-numpy:  /usr/bin/python3 generate.py
"""
import pathlib

import msgpack
import numpy as np


def as_wire(obj):
    if isinstance(obj, np.ndarray):
        return {b"__ndarray__": True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": obj.shape}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    return obj


def write(name, value):
    pathlib.Path(__file__).with_name(name).write_bytes(msgpack.packb(value, default=as_wire))


# What a DROID robot sends (openpi examples/droid/main.py), with small images.
write("droid_observation.msgpack", {
    "observation/exterior_image_1_left": np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3),
    "observation/wrist_image_left": np.full((4, 4, 3), 200, dtype=np.uint8),
    "observation/joint_position": np.linspace(-1.0, 1.0, 7),
    "observation/gripper_position": np.array([0.25], dtype=np.float32),
    "prompt": "pick up the cup",
})

# What the server answers: the action chunk and timings.
write("actions_response.msgpack", {
    "actions": (np.arange(10 * 8, dtype=np.float32) / 10).reshape(10, 8),
    "policy_timing": {"infer_ms": 12.5},
    "server_timing": {"infer_ms": 13.25, "prev_total_ms": 40.0},
})

# The metadata message sent on connect.
write("metadata.msgpack", {"checkpoint": "sim-demo@v1", "action_dim": 4, "action_horizon": 8, "cameras": ["front", "wrist"]})

# Scalars and containers of every kind the codec meets.
write("variety.msgpack", {
    "int": 1, "neg": -200, "big": 70000, "huge": 2**40, "float": 1.5, "bool": True, "none": None,
    "list": [1, 2, 3], "text": "héllo", "bytes": b"\x00\x01",
    "np_float": np.float32(2.5), "np_int": np.int64(7),
    "nested": {"arr": np.array([1, -2, 3], dtype=np.int32)},
    "bool_arr": np.array([True, False]),
    "f64": np.array([[1.0, 2.0], [3.0, 4.0]]),
    "big_endian": np.array([1.5, -2.0], dtype=">f4"),
})
