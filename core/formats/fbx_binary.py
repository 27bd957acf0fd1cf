"""The FBX binary container (version 7400): a tree of named nodes with typed properties.

Written from the public description of the format (Blender developer blog, "FBX binary file
format specification", 2013; the fbx-book). Layout, all little-endian:

- header: ``b"Kaydara FBX Binary  \\x00\\x1a\\x00"`` + uint32 version;
- node record: uint32 end offset (absolute), uint32 property count, uint32 property bytes,
  uint8 name length, name, properties, child records, then a 13-byte null record when the
  node has children or no properties (7500+ widens the three uint32 to uint64, 25 bytes);
- the top-level list ends with a null record, then the footer.

Property codes: Y int16, C bool, I int32, F float32, D float64, L int64, S string, R bytes,
and arrays i int32, l int64, f float32, d float64, b bool (uint32 count, encoding 0 raw or
1 zlib, uint32 byte length, data).

Python values map to codes: bool C, int I, float D, str S, bytes R, numpy arrays by dtype.
Wrap a value with ``i16``, ``i64`` or ``f32`` for Y, L or F.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

__all__ = ["Node", "Typed", "i16", "i64", "f32", "to_bytes", "parse", "VERSION"]

VERSION = 7400
MAGIC = b"Kaydara FBX Binary  \x00\x1a\x00"
# The FBX SDK checks FileId and CreationTime against the footer id; these three belong
# together (every Blender-made FBX carries them), so files we write pass that check.
FILE_ID = bytes.fromhex("28b32aebb624ccc2bfc8b02aa92bfcf1")
CREATION_TIME = "1970-01-01 10:00:00:000"
FOOTER_ID = bytes.fromhex("fabcab09d0c8d466b176fb831cf7267e")
FOOTER_MAGIC = bytes.fromhex("f85a8c6adef5d97eece90ce3758f290b")
_COMPRESS_FROM = 128  # bytes; smaller arrays stay raw, as zlib would not pay off

_SCALARS = {"Y": "<h", "C": "<?", "I": "<i", "F": "<f", "D": "<d", "L": "<q"}
_ARRAYS = {"i": "<i4", "l": "<i8", "f": "<f4", "d": "<f8", "b": "?"}
_ARRAY_CODE = {np.dtype(np.int32): "i", np.dtype(np.int64): "l", np.dtype(np.float32): "f",
               np.dtype(np.float64): "d", np.dtype(np.bool_): "b"}


class Typed(NamedTuple):
    """A property with an explicit type code (for Y, L and F, which Python types don't pick)."""
    code: str
    value: object


def i16(v) -> Typed:
    return Typed("Y", int(v))


def i64(v) -> Typed:
    return Typed("L", int(v))


def f32(v) -> Typed:
    return Typed("F", float(v))


@dataclass
class Node:
    name: str
    props: list = field(default_factory=list)
    children: list["Node"] = field(default_factory=list)

    def add(self, name: str, *props) -> "Node":
        """Append a child node and return it."""
        child = Node(name, list(props))
        self.children.append(child)
        return child

    def find(self, name: str) -> "Node | None":
        return next((c for c in self.children if c.name == name), None)

    def find_all(self, name: str) -> list["Node"]:
        return [c for c in self.children if c.name == name]


# writing

def _prop_bytes(value) -> bytes:
    if isinstance(value, Typed):
        code, v = value
        if code in _SCALARS:
            return code.encode() + struct.pack(_SCALARS[code], v)
        value = np.asarray(v, dtype=_ARRAYS[code]) if code in _ARRAYS else v
    if isinstance(value, (bool, np.bool_)):
        return b"C" + struct.pack("<?", bool(value))
    if isinstance(value, (int, np.integer)):
        return b"I" + struct.pack("<i", int(value))  # struct raises beyond int32: use i64()
    if isinstance(value, (float, np.floating)):
        return b"D" + struct.pack("<d", float(value))
    if isinstance(value, str):
        value = value.encode("utf-8")
        return b"S" + struct.pack("<I", len(value)) + value
    if isinstance(value, (bytes, bytearray)):
        return b"R" + struct.pack("<I", len(value)) + bytes(value)
    if isinstance(value, np.ndarray):
        code = _ARRAY_CODE.get(value.dtype)
        if code is None or value.ndim != 1:
            raise TypeError(f"FBX arrays are 1-D int32/int64/float32/float64/bool, got "
                            f"{value.dtype} with shape {value.shape}")
        raw = value.astype(_ARRAYS[code]).tobytes()
        data, encoding = raw, 0
        if len(raw) >= _COMPRESS_FROM:
            packed = zlib.compress(raw)
            if len(packed) < len(raw):
                data, encoding = packed, 1
        return code.encode() + struct.pack("<III", len(value), encoding, len(data)) + data
    raise TypeError(f"no FBX property type for {type(value).__name__}")


def _node_bytes(node: Node, offset: int) -> bytes:
    name = node.name.encode("ascii")
    props = b"".join(_prop_bytes(p) for p in node.props)
    pos = offset + 13 + len(name) + len(props)
    body = []
    for child in node.children:
        body.append(_node_bytes(child, pos))
        pos += len(body[-1])
    if node.children or not node.props:
        body.append(b"\0" * 13)
        pos += 13
    if pos > 0xFFFFFFFF:
        raise ValueError("FBX 7.4 files must stay under 4 GiB")
    head = struct.pack("<IIIB", pos, len(node.props), len(props), len(name))
    return head + name + props + b"".join(body)


def to_bytes(nodes: list[Node], version: int = VERSION) -> bytes:
    """The top-level nodes as a complete binary FBX file."""
    if version >= 7500:
        raise ValueError("only the 32-bit layout (version < 7500) is written")
    out = [MAGIC + struct.pack("<I", version)]
    pos = len(out[0])
    for node in nodes:
        out.append(_node_bytes(node, pos))
        pos += len(out[-1])
    out.append(b"\0" * 13 + FOOTER_ID)
    pos += 13 + 16
    # footer: pad to 16, 4 zero bytes, the version, 120 zero bytes, the closing magic
    out.append(b"\0" * (-pos % 16) + b"\0" * 4 + struct.pack("<I", version) + b"\0" * 120
               + FOOTER_MAGIC)
    return b"".join(out)


# reading (for checks and tests)

class _Reader:
    def __init__(self, data: bytes, version: int):
        self.data = data
        self.wide = version >= 7500
        self.head = struct.Struct("<QQQB" if self.wide else "<IIIB")

    def node(self, pos: int) -> tuple[Node | None, int]:
        end, n_props, props_len, name_len = self.head.unpack_from(self.data, pos)
        pos += self.head.size
        if end == 0:
            if n_props or props_len or name_len:
                raise ValueError(f"FBX: malformed null record at byte {pos - self.head.size}")
            return None, pos
        if end > len(self.data):
            raise ValueError(f"FBX: node end offset {end} beyond the file ({len(self.data)} bytes)")
        name = self.data[pos:pos + name_len].decode("ascii")
        pos += name_len
        node, props_end = Node(name), pos + props_len
        for _ in range(n_props):
            value, pos = self.prop(pos)
            node.props.append(value)
        if pos != props_end:
            raise ValueError(f"FBX: node {name!r} property bytes disagree with its header")
        while pos < end:
            child, pos = self.node(pos)
            if child is None:
                break
            node.children.append(child)
        if pos != end:
            raise ValueError(f"FBX: node {name!r} ends at {pos}, its header says {end}")
        return node, pos

    def prop(self, pos: int):
        code = chr(self.data[pos])
        pos += 1
        if code in _SCALARS:
            fmt = struct.Struct(_SCALARS[code])
            return fmt.unpack_from(self.data, pos)[0], pos + fmt.size
        if code in "SR":
            (n,) = struct.unpack_from("<I", self.data, pos)
            raw = self.data[pos + 4:pos + 4 + n]
            return (raw.decode("utf-8") if code == "S" else raw), pos + 4 + n
        if code in _ARRAYS:
            count, encoding, n = struct.unpack_from("<III", self.data, pos)
            raw = self.data[pos + 12:pos + 12 + n]
            if encoding == 1:
                raw = zlib.decompress(raw)
            elif encoding != 0:
                raise ValueError(f"FBX: unknown array encoding {encoding}")
            arr = np.frombuffer(raw, dtype=_ARRAYS[code])
            if arr.shape != (count,):
                raise ValueError(f"FBX: array of {arr.size} items, header says {count}")
            return arr, pos + 12 + n
        raise ValueError(f"FBX: unknown property type {code!r} at byte {pos - 1}")


def parse(data: bytes) -> Node:
    """Read a binary FBX into a tree: a root Node named "" whose one property is the file
    version and whose children are the top-level nodes. Raises ValueError if malformed."""
    if data[:len(MAGIC)] != MAGIC:
        raise ValueError("not a binary FBX file (bad magic)")
    (version,) = struct.unpack_from("<I", data, len(MAGIC))
    reader = _Reader(bytes(data), version)
    root, pos = Node("", [version]), len(MAGIC) + 4
    while True:
        node, pos = reader.node(pos)
        if node is None:
            break
        root.children.append(node)
    if not data.endswith(FOOTER_MAGIC):
        raise ValueError("FBX: the footer's closing magic is missing")
    return root
