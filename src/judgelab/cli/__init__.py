"""The `judgelab` command line."""

from judgelab.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
