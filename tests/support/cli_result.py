"""What one in-process ``webmg-ops`` command printed and how it exited."""

from __future__ import annotations


class CliResult:
    """What one command printed and how it exited.

    Inputs: the exit code and the captured standard output and error.
    """

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out[-400:]!r}, err={self.err[-800:]!r})"
