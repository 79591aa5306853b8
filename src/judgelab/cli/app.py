"""The Typer app: `judgelab serve | worker | workers | keys | import | demo | export | calls | metrics | eval | misaligned | validate | to-code | review | mcp`."""

from __future__ import annotations

from typing import Annotated

import typer

from judgelab import __version__
from judgelab.cli import calls, demo, evaluate, keys, labs, mcp, metrics, review, serve, worker


def _no_flag_types() -> None:
    """Help without `<bool>` beside every flag (--json, --help): a flag takes no value to type."""
    from typer.core import TyperOption

    original = TyperOption.display_type_rich

    def display(self: TyperOption, ctx: object) -> str | None:
        return None if getattr(self, "is_flag", False) else original(self, ctx)  # type: ignore[arg-type]

    TyperOption.display_type_rich = display  # type: ignore[method-assign]


_no_flag_types()

app = typer.Typer(
    name="judgelab",
    help="judgelab: a metric lab for LLM-as-judge metrics on voice and chat agent calls.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"judgelab {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version")] = False,
) -> None:
    """Settings come from JUDGELAB_* variables: JUDGELAB_DATA_DIR (SQLite, default ./judgelab-data) or JUDGELAB_DATABASE_URL."""


app.command("serve")(serve.serve)
app.command("worker")(worker.worker)
app.command("workers")(worker.workers)
app.command("eval")(evaluate.evaluate)
app.command("misaligned")(labs.misaligned)
app.command("validate")(labs.validate)
app.command("to-code")(labs.to_code)
app.command("mcp")(mcp.mcp)
app.command("review")(review.review)
app.add_typer(keys.app, name="keys")
app.command("import")(calls.import_file)
app.command("demo")(demo.demo)
app.command("export")(calls.export)
app.add_typer(calls.app, name="calls")
app.add_typer(metrics.app, name="metrics")
