"""The ``risk`` command line: one Typer app, one command per job.

Commands stay thin: they parse options and call ``pipelines``, ``experiments`` or ``risk``.
Heavy libraries (MLflow, LightGBM, FastAPI) are imported inside the commands, so that
``risk --help`` answers at once.
"""

from __future__ import annotations

import typer

from risk.process import tune_process

app = typer.Typer(
    name="risk",
    help="Grey-import risk scoring for customs road crossings.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _before_any_command() -> None:
    # OpenMP waits and Polars' allocator, set before any command loads them (risk.process).
    tune_process()


# Each job registers itself here, one line per command (keep alphabetical within groups).
from risk.commands import console as _console  # noqa: E402
from risk.commands import demo as _demo  # noqa: E402
from risk.commands import generate as _generate  # noqa: E402
from risk.commands import ingest as _ingest  # noqa: E402
from risk.commands import promote as _promote  # noqa: E402
from risk.commands import publish as _publish  # noqa: E402
from risk.commands import score as _score  # noqa: E402
from risk.commands import simulate as _simulate  # noqa: E402
from risk.commands import train as _train  # noqa: E402
from risk.commands import tune as _tune  # noqa: E402
from risk.commands.rules import app as rules_app  # noqa: E402
from risk.commands.users import app as users_app  # noqa: E402

app.command("demo")(_demo.command)
app.command("generate")(_generate.command)
app.command("ingest")(_ingest.command)
app.command("train")(_train.command)
app.command("tune")(_tune.command)
app.command("promote")(_promote.command)
app.command("score")(_score.command)
app.command("simulate")(_simulate.command)
app.command("console")(_console.command)
app.command("publish")(_publish.command)
app.command("export-outcomes")(_publish.export_command)
app.add_typer(users_app, name="users")
app.add_typer(rules_app, name="rules")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
