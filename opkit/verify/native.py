"""Moved to opkit.runtimes.child (the child process of every runtime); kept for older imports."""

from opkit.runtimes.child import DEFAULT_TIMEOUT, ChildResult, crash_error, run_worker, signal_name

__all__ = ["DEFAULT_TIMEOUT", "ChildResult", "crash_error", "run_worker", "signal_name"]
