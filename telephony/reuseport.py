"""Spreads one source's REGISTERs over several engine processes that share a UDP port.

SO_REUSEPORT picks a socket by hashing the 4-tuple, so everything one source sends (a
dispatcher in front of us, the benchmark's sipp) lands in one process, and one Python process
is one core. A classic BPF program attached to the group (SO_ATTACH_REUSEPORT_CBPF: Linux 4.5,
no privilege) chooses the socket instead:

- A REGISTER from a spread source goes to the worker picked by a hash of its Call-ID. A
  retransmission has the same bytes, the credentials REGISTER and every refresh of a PBX have
  the same Call-ID: all of them reach the process holding the transaction, the nonce count and
  the registrar's view of that registration.
- Everything else returns an index past the group, which makes the kernel fall back to its
  4-tuple hash: dialogs, their transactions and the answers to our own requests keep today's
  per-flow affinity, and so does a REGISTER from any other source, so that the INVITEs of a
  registered flow reach the process that knows the flow.

The program only reads the packet; a Call-ID it cannot find in the first bytes, or a packet
too short to hash, takes the fallback too. `simulate` runs the same instructions in Python,
which tells tests (and anyone curious) which worker a datagram goes to.
"""

from __future__ import annotations

import ctypes
import ipaddress
import operator
import socket
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SO_ATTACH_REUSEPORT_CBPF = getattr(socket, "SO_ATTACH_REUSEPORT_CBPF", 51)
# Loads at this negative offset read the IP header (the program otherwise starts at the UDP payload).
SKF_NET_OFF = -0x100000
FALLBACK = 0xFFFFFFFF  # >= the group's size: the kernel uses its own hash
BPF_MAXINSNS = 4096

# The Call-ID header is looked for at every byte offset up to SCAN_END (well past where PBXs put
# it; longer programs fail to load with ENOMEM near 3,700 instructions); its value's first HASHED
# bytes choose the worker.
SCAN_START, SCAN_END = 16, 656
HASHED = 12
MIN_REGISTER = 64

# classic BPF opcodes (linux/filter.h)
LD, LDX, ST, ALU, JMP, RET, MISC = 0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x07
W, H, B = 0x00, 0x08, 0x10
IMM, ABS, IND, MEM, LEN = 0x00, 0x20, 0x40, 0x60, 0x80
ADD, SUB, MUL, OR, AND, LSH, RSH, MOD, XOR = 0x00, 0x10, 0x20, 0x40, 0x50, 0x60, 0x70, 0x90, 0xA0
JA, JEQ, JGT, JGE = 0x00, 0x10, 0x20, 0x30
K, X = 0x00, 0x08
RET_A = 0x10
TAX = 0x00

_MIX = (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D)
_ALU = {
    ADD: operator.add,
    SUB: operator.sub,
    MUL: operator.mul,
    OR: operator.or_,
    AND: operator.and_,
    LSH: operator.lshift,
    RSH: operator.rshift,
    MOD: operator.mod,
    XOR: operator.xor,
}


@dataclass(frozen=True, slots=True)
class Insn:
    code: int
    jt: int = 0
    jf: int = 0
    k: int = 0


def _word(text: bytes) -> int:
    return struct.unpack(">I", text)[0]


class _Assembler:
    """Straight-line cBPF with named forward jumps (classic BPF has no backward ones)."""

    def __init__(self) -> None:
        self.code: list[tuple[int, object, object, int]] = []
        self.labels: dict[str, int] = {}

    def emit(self, code: int, k: int = 0, jt: object = 0, jf: object = 0) -> None:
        self.code.append((code, jt, jf, k & 0xFFFFFFFF))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def ja(self, target: str) -> None:
        self.code.append((JMP | JA, 0, 0, target))  # type: ignore[arg-type]

    def unless(self, op: int, k: int, target: str) -> None:
        """Goes to `target` (however far) unless `A op k`; conditional jumps reach only 255 ahead."""
        self.emit(JMP | op | K, k, 1, 0)
        self.ja(target)

    def when(self, op: int, k: int, target: str) -> None:
        self.emit(JMP | op | K, k, 0, 1)
        self.ja(target)

    def assemble(self) -> list[Insn]:
        out = []
        for pc, (code, jt, jf, k) in enumerate(self.code):
            if code == JMP | JA and isinstance(k, str):
                k = self.labels[k] - pc - 1
            jt = self.labels[jt] - pc - 1 if isinstance(jt, str) else jt
            jf = self.labels[jf] - pc - 1 if isinstance(jf, str) else jf
            if not (0 <= jt <= 255 and 0 <= jf <= 255 and k >= 0):
                raise ValueError(f"jump out of range at {pc}")
            out.append(Insn(code, jt, jf, k))
        if len(out) > BPF_MAXINSNS:
            raise ValueError(f"program too long: {len(out)} instructions")
        return out


def steering_program(workers: int, spread_from: Iterable[str] = ("0.0.0.0/0", "::/0")) -> list[Insn]:
    """The group's program: REGISTERs from `spread_from` by Call-ID over `workers`, the rest by flow."""
    if not 1 <= workers <= 1024:
        raise ValueError("workers must be 1..1024")
    networks = [ipaddress.ip_network(n) for n in spread_from]
    a = _Assembler()
    a.emit(LD | W | LEN)
    a.unless(JGE, MIN_REGISTER, "fallback")
    _source_check(a, networks)
    a.label("spread")
    a.emit(LD | W | ABS, 0)
    a.unless(JEQ, _word(b"REGI"), "fallback")
    a.emit(LD | W | ABS, 4)
    a.unless(JEQ, _word(b"STER"), "fallback")
    # "\r\nCall-ID:" in any letter case: the word at p is "\nCal". (A Call-Info header before the
    # Call-ID would be hashed instead: as stable, so still correct, and not checking the next word
    # lets the scan reach further.) Every 32 offsets, make sure the packet holds the next 32 (+8),
    # or a load past its end would end the program with 0 and send everything short to worker 0.
    block = 32
    for start in range(SCAN_START, SCAN_END, block):
        a.emit(LD | W | LEN)
        a.unless(JGE, start + block + 8, "fallback")
        for p in range(start, start + block):
            a.emit(LD | W | ABS, p)
            a.emit(ALU | OR | K, 0x00202020)
            a.emit(JMP | JEQ | K, _word(b"\ncal"), 0, 2)
            a.emit(LDX | W | IMM, p + 9)  # the value (with any leading space) after "\nCall-ID:"
            a.ja("hash")
    a.ja("fallback")
    a.label("hash")
    a.emit(LD | W | LEN)
    a.emit(ALU | SUB | X)
    a.unless(JGE, HASHED, "fallback")
    for i in range(HASHED // 4):
        a.emit(LD | W | IND, 4 * i)
        a.emit(ST, i)
    a.emit(LD | W | MEM, 0)
    for i in range(HASHED // 4):
        if i:
            a.emit(LDX | W | MEM, i)
            a.emit(ALU | XOR | X)
        a.emit(ALU | MUL | K, _MIX[i % len(_MIX)])
    a.emit(MISC | TAX)
    a.emit(ALU | RSH | K, 16)
    a.emit(ALU | XOR | X)
    a.emit(ALU | MOD | K, workers)
    a.emit(RET | RET_A)
    a.label("fallback")
    a.emit(RET | K, FALLBACK)
    return a.assemble()


def _source_check(a: _Assembler, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> None:
    if {n.version for n in networks if n.prefixlen == 0} == {4, 6}:
        return  # every source
    a.emit(LD | B | ABS, SKF_NET_OFF)
    a.emit(ALU | RSH | K, 4)
    a.when(JEQ, 6, "v6")
    a.unless(JEQ, 4, "fallback")
    for net in (n for n in networks if n.version == 4):
        mask = int(net.netmask)
        a.emit(LD | W | ABS, SKF_NET_OFF + 12)
        a.emit(ALU | AND | K, mask)
        a.when(JEQ, int(net.network_address) & mask, "spread")
    a.ja("fallback")
    a.label("v6")
    for index, net in enumerate(n for n in networks if n.version == 6):
        address = int(net.network_address).to_bytes(16, "big")
        mask = int(net.netmask).to_bytes(16, "big")
        miss = f"v6miss{index}"
        for w in range(4):
            m = _word(mask[4 * w : 4 * w + 4])
            if not m:
                break
            a.emit(LD | W | ABS, SKF_NET_OFF + 8 + 4 * w)
            a.emit(ALU | AND | K, m)
            a.unless(JEQ, _word(address[4 * w : 4 * w + 4]) & m, miss)
        a.ja("spread")
        a.label(miss)
    a.ja("fallback")


def attach(sock: socket.socket, program: Sequence[Insn]) -> None:
    """Attaches `program` to the SO_REUSEPORT group `sock` belongs to (for every socket in it)."""
    raw = b"".join(struct.pack("HBBI", i.code, i.jt, i.jf, i.k) for i in program)
    buffer = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack("HL", len(program), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)


def simulate(program: Sequence[Insn], payload: bytes, source_ip: str = "127.0.0.1") -> int:
    """Runs `program` as the kernel would on a datagram; returns the chosen index (or FALLBACK).

    A load past the packet ends the program with 0, as in the kernel.
    """
    address = ipaddress.ip_address(source_ip)
    if address.version == 4:
        net = bytes([0x45]) + bytes(11) + address.packed + bytes(4)
    else:
        net = bytes([0x60]) + bytes(7) + address.packed + bytes(16)
    a = x = 0
    mem = [0] * 16
    pc = 0
    while True:
        i = program[pc]
        pc += 1
        cls = i.code & 0x07
        if cls in (LD, LDX):
            mode, size = i.code & 0xE0, i.code & 0x18
            if mode == IMM:
                value = i.k
            elif mode == LEN:
                value = len(payload)
            elif mode == MEM:
                value = mem[i.k]
            else:
                offset = i.k if mode == ABS else x + i.k
                width = {W: 4, H: 2, B: 1}[size]
                if offset >= 1 << 31:
                    offset -= 1 << 32
                data, offset = (net, offset - SKF_NET_OFF) if offset < 0 else (payload, offset)
                if offset + width > len(data):
                    return 0
                value = int.from_bytes(data[offset : offset + width], "big")
            if cls == LD:
                a = value
            else:
                x = value
        elif cls == ST:
            mem[i.k] = a
        elif cls == ALU:
            operand = x if i.code & X else i.k
            a = _ALU[i.code & 0xF0](a, operand) & 0xFFFFFFFF
        elif cls == JMP:
            op = i.code & 0xF0
            if op == JA:
                pc += i.k
                continue
            operand = x if i.code & X else i.k
            taken = {JEQ: a == operand, JGT: a > operand, JGE: a >= operand}[op]
            pc += i.jt if taken else i.jf
        elif cls == RET:
            return a if i.code & RET_A else i.k
        elif cls == MISC:
            x = a
        else:  # pragma: no cover - the assembler emits nothing else
            raise ValueError(f"opcode {i.code:#x}")
