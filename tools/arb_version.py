"""The line a tool written in Python prints for --version, the C
binaries' own (proto/arb_options.c): "PROGRAM VERSION (protocol N)".

ARB_VERSION and ARB_PROTO_VERSION are read from proto/arb_proto.h, as
SConstruct reads the first: these tools run from the source tree, and the
header is the one place both numbers are written.
"""

import os
import re

HEADER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'proto',
                      'arb_proto.h')


def line(program):
    """'PROGRAM 0.1.0 (protocol 1)', from the header of this tree."""
    with open(HEADER) as f:
        text = f.read()
    version = re.search(r'#define ARB_VERSION\s+"([^"]+)"', text).group(1)
    protocol = re.search(r'#define ARB_PROTO_VERSION\s+(\d+)', text).group(1)
    return '%s %s (protocol %s)' % (program, version, protocol)
