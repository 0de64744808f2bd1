"""Reference lackey --trace-mem parser: obvious Python, one line at a time (for the
differential tests of ppsize.recording.lackey)."""
KINDS = {"I": 0, "L": 1, "S": 2, "M": 3}


def parse_lines(text: bytes):
    """-> (list of (addr, size, kind), message line count); raises ValueError(line_no)
    at the first line that is neither an access nor a valgrind message."""
    out, msgs = [], 0
    lines = text.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for no, raw in enumerate(lines, 1):
        line = raw.decode("latin-1")
        if line == "" or line[:2] in ("==", "--", "**"):
            msgs += 1
            continue
        if line[:3] == "I  ":
            kind = "I"
        elif len(line) >= 3 and line[0] == " " and line[1] in "LSM" and line[2] == " ":
            kind = line[1]
        else:
            raise ValueError(no)
        body = line[3:]
        if body.count(",") < 1:
            raise ValueError(no)
        a, _, s = body.rpartition(",")
        if not (1 <= len(a) <= 16 and all(c in "0123456789abcdefABCDEF" for c in a)):
            raise ValueError(no)
        if not (1 <= len(s) <= 5 and s.isdigit() and s.isascii() and int(s) <= 65535):
            raise ValueError(no)
        out.append((int(a, 16), int(s), KINDS[kind]))
    return out, msgs
