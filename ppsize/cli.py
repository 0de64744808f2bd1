"""The ``ppsize`` command. Each subcommand lives in its own module, which provides
``add_parser(subparsers)`` and ``run(args) -> int``."""
from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> module (imported only when needed)
SUBCOMMANDS = {
    "compare": "ppsize.cmd_compare",
    "geometry": "ppsize.cmd_geometry",
    "inspect": "ppsize.cmd_inspect",
    "race": "ppsize.race.cli",
    "record": "ppsize.cmd_record",
    "replay": "ppsize.cmd_replay",
    "snapshot": "ppsize.cmd_snapshot",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):          # bad arguments: exit 2 with the message
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ppsize", description="Memory model of Linux with a per-process page size: "
                     "compare kernel configurations, page-table geometries and page-cache races.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, module in SUBCOMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:      # a subcommand still being written
            if e.name and module.startswith(e.name):
                continue
            raise
        p = mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args._run(args)
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
