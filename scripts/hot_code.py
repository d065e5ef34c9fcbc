#!/usr/bin/env python3
"""Lists a check's hot functions for runtime/hot-code.order.

Usage: hot_code.py LONG SHORT EXTRA_CHECKS

LONG and SHORT are callgrind profiles (`--demangle=no`) of the same workload
that differ only in how many checks they ran: EXTRA_CHECKS more in LONG. A
function is hot if LONG calls it at least 0.9 times per extra check more
than SHORT does; so compiling the component, registering the connectors and
the first round's connects, which both profiles share, drop out. Hot
functions are printed hottest first (the instructions of their own per
extra check), one mangled name per line, as LLD's --symbol-ordering-file
takes them.
"""

import collections
import re
import sys

# callgrind's recursion marks (`'2`) are not part of a symbol's name.
RECURSION = re.compile(r"'\d+$")


def profile(path):
    """Calls to, and instructions of its own in, each function of a profile."""
    names = {}
    calls = collections.Counter()
    own = collections.Counter()

    def name(field):
        # Names are compressed: "(id) name" the first time, "(id)" after.
        match = re.match(r"\((\d+)\)(?: (.*))?$", field)
        if not match:
            return RECURSION.sub("", field)
        if match.group(2):
            names[match.group(1)] = RECURSION.sub("", match.group(2))
        return names.get(match.group(1), match.group(1))

    current = callee = None
    with open(path) as lines:
        for line in lines:
            line = line.rstrip("\n")
            if line.startswith("fn="):
                current, callee = name(line[3:]), None
            elif line.startswith("cfn="):
                callee = name(line[4:])
            elif line.startswith("calls=") and callee:
                calls[callee] += int(line[6:].split()[0])
            elif line[:1].isdigit() or line[:1] in "+-*":
                # A cost line: the callee's inclusive cost right after
                # `calls=`, the current function's own cost otherwise.
                fields = line.split()
                if callee:
                    callee = None
                elif current and len(fields) >= 2:
                    own[current] += int(fields[1])
    return calls, own


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    long_calls, long_own = profile(sys.argv[1])
    short_calls, short_own = profile(sys.argv[2])
    extra = int(sys.argv[3])
    hot = [
        symbol
        for symbol, count in long_calls.items()
        # Rust's mangled names; libc's and the guest's code are not ours to place.
        if symbol.startswith("_ZN") and count - short_calls[symbol] >= 0.9 * extra
    ]
    hot.sort(key=lambda symbol: short_own[symbol] - long_own[symbol])
    print("\n".join(hot))


if __name__ == "__main__":
    main()
