"""The command line: a thin shell over the library. One module per command; heavy imports
(torch, onnx, onnxruntime) happen inside the commands that need them."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from opkit import __version__, ui
from opkit.errors import OpkitError

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "new": ("opkit.cli.new", "create a new op: ops/<op>/spec.py and ops/<op>/<op>.cc"),
    "build": ("opkit.cli.build", "generate the glue and build the op library (cmake + ninja)"),
    "verify": ("opkit.cli.verify", "export a model, run it in ONNX Runtime with the library, compare with PyTorch"),
    "export": ("opkit.cli.export", "export a model to ONNX (custom nodes, or --decompose into standard ONNX ops)"),
    "run": ("opkit.cli.run", "run an .onnx model through opkit-runner (C++): .npy inputs in, .npy outputs out"),
    "info": ("opkit.cli.info", "show what an op library records (opkit version, ORT API version, ops)"),
    "package": ("opkit.cli.package", "build a wheel of the workspace's ops: library, specs, Markdown docs"),
    "doctor": ("opkit.cli.doctor", "show what opkit found and uses, and how to fix what is missing"),
    "test": ("opkit.cli.test", "test every native kernel against its reference on generated edge cases"),
    "check": ("opkit.cli.check", "check an ONNX model's custom-domain nodes against the workspace's specs"),
    "adopt": ("opkit.cli.adopt", "turn every op a model's ONNX export cannot translate into an opkit op (no model edit)"),
    "bench": ("opkit.cli.bench", "time an op's kernel (or a model) in ONNX Runtime vs standard ONNX ops vs torch eager"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit 2 with one line, like every usage error
        self.print_usage(sys.stderr)
        print(f"opkit: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="opkit", description="Custom operators for PyTorch models that ship through ONNX.")
    parser.add_argument("--version", action="version", version=f"opkit {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only results and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    ui.set_quiet(args.quiet)
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except OpkitError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("opkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `opkit ... | head`: the reader left; nothing more to say
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # a bug in opkit: one message, the traceback only on request
        import os

        if os.environ.get("OPKIT_DEBUG"):
            raise
        where = ""
        tb = exc.__traceback__
        while tb is not None:
            where = f" ({tb.tb_frame.f_code.co_filename}:{tb.tb_lineno})"
            tb = tb.tb_next
        print(f"opkit: internal error in `opkit {args.command}`: {type(exc).__name__}: {exc}{where}\n"
              f"  this is a bug in opkit, not in your files; rerun with OPKIT_DEBUG=1 for the traceback "
              f"and please report it", file=sys.stderr)
        return 1


def entry() -> None:
    code = main()
    if "torch" in sys.modules:
        # Tearing down an interpreter that imported torch (and ran an export) takes ~1.3 s on the
        # reference machine: run the atexit handlers, flush, and leave without the teardown.
        import atexit
        import os

        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
